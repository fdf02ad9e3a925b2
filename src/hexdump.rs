//! `--hexdump`: raw bytes as a learner reads them, offset, hex, text.

use std::fmt::Write as _;

/// `0000  81 85 37 fa 21 3d 7f 9f  4d 51 58              |..7.!=..MQX|`
pub fn hexdump(bytes: &[u8]) -> String {
    let mut out = String::new();
    for (row, chunk) in bytes.chunks(16).enumerate() {
        let _ = write!(out, "{:04x}  ", row * 16);
        for i in 0..16 {
            match chunk.get(i) {
                Some(b) => {
                    let _ = write!(out, "{b:02x} ");
                }
                None => out.push_str("   "),
            }
            if i == 7 {
                out.push(' ');
            }
        }
        out.push('|');
        out.extend(chunk.iter().map(|&b| {
            if b.is_ascii_graphic() || b == b' ' {
                b as char
            } else {
                '.'
            }
        }));
        out.push_str("|\n");
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn rows() {
        let text = super::hexdump(&[0x81, 0x85, 0x37, 0xfa, b'M', b'Q']);
        assert_eq!(
            text,
            "0000  81 85 37 fa 4d 51                                |..7.MQ|\n"
        );
    }
}
