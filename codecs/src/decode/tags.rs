//! Metadata revisions into [`Tags`] and the cover image, bounded by [`Limits`].

use super::types::*;
use crate::tags::Tags;
use symphonia::core::formats::FormatReader;
use symphonia::core::meta::{MetadataRevision, StandardTag, StandardVisualKey};

pub(super) fn read_metadata(
    format: &mut dyn FormatReader,
    tags: &mut Tags,
    cover: &mut Option<Cover>,
    limits: &Limits,
) {
    let mut meta = format.metadata();
    while let Some(rev) = meta.pop() {
        absorb(&rev, tags, cover, limits);
    }
    if let Some(rev) = meta.current() {
        absorb(rev, tags, cover, limits);
    }
}

pub(super) fn absorb(
    rev: &MetadataRevision,
    tags: &mut Tags,
    cover: &mut Option<Cover>,
    limits: &Limits,
) {
    let containers = std::iter::once(&rev.media).chain(rev.per_track.iter().map(|t| &t.metadata));
    for c in containers {
        for tag in &c.tags {
            match &tag.std {
                Some(StandardTag::TrackTitle(v)) => tags.title.get_or_insert_with(|| v.to_string()),
                Some(StandardTag::Artist(v)) => tags.artist.get_or_insert_with(|| v.to_string()),
                Some(StandardTag::Album(v)) => tags.album.get_or_insert_with(|| v.to_string()),
                Some(StandardTag::IdentIsrc(v)) => tags.isrc.get_or_insert_with(|| v.to_string()),
                Some(StandardTag::Genre(v)) => tags.genre.get_or_insert_with(|| v.to_string()),
                Some(
                    StandardTag::ReleaseYear(y)
                    | StandardTag::RecordingYear(y)
                    | StandardTag::OriginalReleaseYear(y),
                ) => {
                    if (1000..=2999).contains(y) {
                        tags.year.get_or_insert(*y);
                    }
                    continue;
                }
                Some(
                    StandardTag::ReleaseDate(d)
                    | StandardTag::RecordingDate(d)
                    | StandardTag::OriginalReleaseDate(d),
                ) => {
                    if let Some(y) = crate::tags::year_of(d) {
                        tags.year.get_or_insert(y);
                    }
                    continue;
                }
                Some(StandardTag::TrackNumber(n)) => {
                    tags.track_number.get_or_insert(*n);
                    continue;
                }
                _ => continue,
            };
        }
        for visual in &c.visuals {
            let front = matches!(visual.usage, Some(StandardVisualKey::FrontCover));
            if visual.data.len() > limits.max_cover_bytes || (cover.is_some() && !front) {
                continue;
            }
            if let Some(media_type) = sniff_image(&visual.data) {
                *cover = Some(Cover {
                    media_type,
                    data: visual.data.to_vec(),
                });
            }
        }
    }
}

/// The image type from its magic bytes; a stated MIME type is not trusted.
pub(super) fn sniff_image(data: &[u8]) -> Option<&'static str> {
    if data.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some("image/jpeg")
    } else if data.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else {
        None
    }
}
