//! A PNG encoder for 8-bit RGB images: Up-filtered scanlines, zlib-compressed with
//! `flate2`, chunk checksums from `crc32fast`.

use std::io::Write;

use flate2::Compression;
use flate2::write::ZlibEncoder;

/// zlib stream (RFC 1950) of `data` at the best compression.
fn zlib_compress(data: &[u8]) -> Vec<u8> {
    let mut encoder = ZlibEncoder::new(Vec::with_capacity(data.len() / 8), Compression::best());
    // Writing into a Vec cannot fail.
    let _ = encoder.write_all(data);
    encoder.finish().unwrap_or_default()
}

/// Appends one PNG chunk (length, type, data, CRC-32 over type + data).
fn chunk(out: &mut Vec<u8>, kind: [u8; 4], data: &[u8]) {
    out.extend(u32::try_from(data.len()).unwrap_or(u32::MAX).to_be_bytes());
    let start = out.len();
    out.extend(kind);
    out.extend_from_slice(data);
    let crc = crc32fast::hash(&out[start..]);
    out.extend(crc.to_be_bytes());
}

/// Encodes `pixels` (row-major RGB, `width * height * 3` bytes) as an 8-bit RGB PNG. Every
/// scanline uses filter type 2 (Up: each byte minus the one above it); charts are mostly
/// flat colour, so repeated rows become runs of zeros that compress to almost nothing.
pub fn encode_rgb(width: u32, height: u32, pixels: &[u8]) -> Vec<u8> {
    let stride = usize::try_from(width).unwrap_or(0) * 3;
    let mut raw = Vec::with_capacity(pixels.len() + usize::try_from(height).unwrap_or(0));
    let mut prev: &[u8] = &[];
    for row in pixels.chunks(stride.max(1)) {
        raw.push(2);
        if row == prev {
            raw.resize(raw.len() + row.len(), 0);
        } else {
            raw.extend(
                row.iter()
                    .zip(prev.iter().chain(std::iter::repeat(&0)))
                    .map(|(&x, &up)| x.wrapping_sub(up)),
            );
        }
        prev = row;
    }
    let mut ihdr = Vec::with_capacity(13);
    ihdr.extend(width.to_be_bytes());
    ihdr.extend(height.to_be_bytes());
    ihdr.extend([8, 2, 0, 0, 0]);
    let mut out = vec![0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A];
    chunk(&mut out, *b"IHDR", &ihdr);
    chunk(&mut out, *b"IDAT", &zlib_compress(&raw));
    chunk(&mut out, *b"IEND", &[]);
    out
}

/// Test-only decoding (PNG parsing, inflate), shared with the chart tests.
#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) mod testing {
    use std::io::Read;

    /// Inflates a zlib stream.
    pub(crate) fn unzlib(z: &[u8]) -> Vec<u8> {
        let mut raw = Vec::new();
        flate2::read::ZlibDecoder::new(z).read_to_end(&mut raw).unwrap();
        raw
    }

    /// Parses a PNG produced by this module: checks signature, chunk order and CRCs, inflates the IDAT data,
    /// checks the scanline layout and undoes the filters; returns (width, height, RGB pixels).
    pub(crate) fn decode(png: &[u8]) -> (u32, u32, Vec<u8>) {
        assert_eq!(&png[..8], &[0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A]);
        let (mut pos, mut kinds, mut ihdr, mut idat) = (8, Vec::new(), Vec::new(), Vec::new());
        while pos < png.len() {
            let len = usize::try_from(u32::from_be_bytes(png[pos..pos + 4].try_into().unwrap())).unwrap();
            let body = &png[pos + 4..pos + 8 + len];
            let crc = u32::from_be_bytes(png[pos + 8 + len..pos + 12 + len].try_into().unwrap());
            assert_eq!(crc, crc32fast::hash(body));
            kinds.push(String::from_utf8(body[..4].to_vec()).unwrap());
            match &body[..4] {
                b"IHDR" => ihdr = body[4..].to_vec(),
                b"IDAT" => idat.extend_from_slice(&body[4..]),
                _ => {}
            }
            pos += 12 + len;
        }
        assert_eq!(pos, png.len());
        assert_eq!(kinds, ["IHDR", "IDAT", "IEND"]);
        assert_eq!(ihdr.len(), 13);
        assert_eq!(&ihdr[8..], &[8, 2, 0, 0, 0]);
        let w = u32::from_be_bytes(ihdr[..4].try_into().unwrap());
        let h = u32::from_be_bytes(ihdr[4..8].try_into().unwrap());
        let raw = unzlib(&idat);
        let stride = 3 * usize::try_from(w).unwrap();
        assert_eq!(raw.len(), usize::try_from(h).unwrap() * (stride + 1));
        let mut px: Vec<u8> = Vec::with_capacity(raw.len());
        for (y, line) in raw.chunks(stride + 1).enumerate() {
            for (i, &b) in line[1..].iter().enumerate() {
                let pred = match line[0] {
                    0 => 0,
                    1 => i.checked_sub(3).map_or(0, |j| px[y * stride + j]),
                    2 => y.checked_sub(1).map_or(0, |py| px[py * stride + i]),
                    f => panic!("unexpected filter type {f}"),
                };
                px.push(b.wrapping_add(pred));
            }
        }
        (w, h, px)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::testing::{decode, unzlib};
    use super::*;

    #[test]
    fn chunks_carry_the_png_crc() {
        // The IEND chunk of every PNG: its CRC-32 is the well-known AE426082.
        let mut out = Vec::new();
        chunk(&mut out, *b"IEND", &[]);
        assert_eq!(out, [0, 0, 0, 0, b'I', b'E', b'N', b'D', 0xAE, 0x42, 0x60, 0x82]);
    }

    #[test]
    fn pixels_round_trip_and_flat_images_compress_well() {
        let (w, h) = (37u32, 11u32);
        let pixels: Vec<u8> = (0..w * h * 3).map(|i| u8::try_from(i * 7 % 251).unwrap()).collect();
        assert_eq!(decode(&encode_rgb(w, h, &pixels)), (w, h, pixels));
        let flat = vec![200u8; 900 * 560 * 3];
        let png = encode_rgb(900, 560, &flat);
        assert!(png.len() < 5_000, "{} bytes", png.len());
        assert_eq!(png, encode_rgb(900, 560, &flat), "deterministic");
        assert_eq!(unzlib(&zlib_compress(b"")), b"");
    }
}
