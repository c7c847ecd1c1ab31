//! Cover art: whatever JPEG, PNG or WebP an artist uploads or a file embeds becomes one baseline
//! JPEG of at most [`MAX_SIDE`] pixels a side, with no metadata (no EXIF location, no colour
//! profile surprises), named by the SHA-256 of its bytes. Decoding is bounded, so a
//! decompression bomb is refused rather than allocated.

use sha2::{Digest, Sha256};

/// The longest side of a stored cover: sharp at 300 CSS pixels on a 2× screen.
pub const MAX_SIDE: u32 = 600;

/// The largest image accepted, a side: 64 megapixels in all.
const MAX_INPUT_SIDE: u32 = 8192;

/// A cover ready to store.
#[derive(Debug, Clone)]
pub struct Cover {
    /// SHA-256 of `jpeg`, lowercase hex: its name.
    pub digest: String,
    /// The JPEG.
    pub jpeg: Vec<u8>,
}

/// Why an image was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Not a JPEG, PNG or WebP: refuse the upload (415).
    #[error("the image is not a JPEG, PNG or WebP")]
    Format,
    /// Claims a known format but does not decode, or is too big: refuse the upload (422).
    #[error("the image cannot be read: {0}")]
    Unreadable(String),
}

/// Normalises `bytes` into a stored cover.
///
/// # Errors
/// [`Error::Format`] for anything but JPEG, PNG and WebP (sniffed from the bytes; a stated type
/// is not trusted), [`Error::Unreadable`] for a damaged image or one larger than 8192 pixels a
/// side.
pub fn normalise(bytes: &[u8]) -> Result<Cover, Error> {
    use image::ImageFormat;
    let format = image::guess_format(bytes).map_err(|_| Error::Format)?;
    if !matches!(
        format,
        ImageFormat::Jpeg | ImageFormat::Png | ImageFormat::WebP
    ) {
        return Err(Error::Format);
    }
    let mut reader = image::ImageReader::with_format(std::io::Cursor::new(bytes), format);
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_INPUT_SIDE);
    limits.max_image_height = Some(MAX_INPUT_SIDE);
    limits.max_alloc = Some(512 << 20);
    reader.limits(limits);
    let img = reader
        .decode()
        .map_err(|e| Error::Unreadable(e.to_string()))?;
    let img = if img.width() > MAX_SIDE || img.height() > MAX_SIDE {
        img.resize(MAX_SIDE, MAX_SIDE, image::imageops::FilterType::Lanczos3)
    } else {
        img
    };
    // Transparency is laid over white, as a page would show it.
    let rgba = img.to_rgba8();
    let mut rgb = image::RgbImage::new(rgba.width(), rgba.height());
    for (out, px) in rgb.pixels_mut().zip(rgba.pixels()) {
        let [r, g, b, a] = px.0;
        let over = |c: u8| ((u16::from(c) * u16::from(a) + 255 * (255 - u16::from(a))) / 255) as u8;
        *out = image::Rgb([over(r), over(g), over(b)]);
    }
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 85)
        .encode_image(&rgb)
        .map_err(|e| Error::Unreadable(e.to_string()))?;
    let digest = Sha256::digest(&jpeg)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    Ok(Cover { digest, jpeg })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(w: u32, h: u32, alpha: u8) -> Vec<u8> {
        let img = image::RgbaImage::from_pixel(w, h, image::Rgba([200, 10, 10, alpha]));
        let mut out = std::io::Cursor::new(Vec::new());
        img.write_to(&mut out, image::ImageFormat::Png).unwrap();
        out.into_inner()
    }

    #[test]
    fn a_large_png_becomes_a_bounded_jpeg() {
        let c = normalise(&png(1500, 1000, 255)).unwrap();
        assert!(c.jpeg.starts_with(&[0xFF, 0xD8, 0xFF]));
        let back = image::load_from_memory(&c.jpeg).unwrap();
        assert_eq!((back.width(), back.height()), (600, 400));
        assert_eq!(c.digest.len(), 64);
        // The same image gives the same name.
        assert_eq!(normalise(&png(1500, 1000, 255)).unwrap().digest, c.digest);
    }

    #[test]
    fn transparency_is_laid_over_white() {
        let c = normalise(&png(10, 10, 0)).unwrap();
        let back = image::load_from_memory(&c.jpeg).unwrap().to_rgb8();
        assert!(back.get_pixel(5, 5).0.iter().all(|&v| v > 240));
    }

    #[test]
    fn other_formats_and_damage_are_refused() {
        assert!(matches!(normalise(b"GIF89a......"), Err(Error::Format)));
        assert!(matches!(normalise(b"hello"), Err(Error::Format)));
        let mut cut = png(100, 100, 255);
        cut.truncate(60);
        assert!(matches!(normalise(&cut), Err(Error::Unreadable(_))));
        // A PNG header declaring 100 000 pixels a side is refused before any allocation.
        let mut huge = png(1, 1, 255);
        huge[16..20].copy_from_slice(&100_000u32.to_be_bytes());
        huge[20..24].copy_from_slice(&100_000u32.to_be_bytes());
        assert!(matches!(normalise(&huge), Err(Error::Unreadable(_))));
    }
}
