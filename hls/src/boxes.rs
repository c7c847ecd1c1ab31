//! A minimal ISO BMFF box writer: size-prefixed boxes built in a byte vector.

/// Appends a box of type `kind` whose body `body` writes, patching the size afterwards.
pub(crate) fn bx(out: &mut Vec<u8>, kind: &[u8; 4], body: impl FnOnce(&mut Vec<u8>)) {
    let start = out.len();
    out.extend_from_slice(&[0, 0, 0, 0]);
    out.extend_from_slice(kind);
    body(out);
    let size = (out.len() - start) as u32;
    out[start..start + 4].copy_from_slice(&size.to_be_bytes());
}

/// Appends a FullBox (ISO/IEC 14496-12 4.2): a box with a version byte and 24 bits of flags.
pub(crate) fn full(
    out: &mut Vec<u8>,
    kind: &[u8; 4],
    version: u8,
    flags: u32,
    body: impl FnOnce(&mut Vec<u8>),
) {
    bx(out, kind, |o| {
        o.push(version);
        o.extend_from_slice(&flags.to_be_bytes()[1..]);
        body(o);
    });
}

pub(crate) fn u16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_be_bytes());
}

pub(crate) fn u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_be_bytes());
}

pub(crate) fn u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_be_bytes());
}

pub(crate) fn zeros(out: &mut Vec<u8>, n: usize) {
    out.resize(out.len() + n, 0);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_patched() {
        let mut out = Vec::new();
        full(&mut out, b"test", 1, 0x0203, |o| u16(o, 7));
        assert_eq!(out, [0, 0, 0, 14, b't', b'e', b's', b't', 1, 0, 2, 3, 0, 7]);
    }
}
