//! How record bytes are printed: UTF-8 as is, invalid sequences as `\xNN` escapes, `null`
//! for a missing key or value (as Kafka's console consumer prints it).

use std::io::{self, Write};

pub fn write_bytes(out: &mut impl Write, bytes: Option<&[u8]>) -> io::Result<()> {
    let Some(bytes) = bytes else {
        return out.write_all(b"null");
    };
    for chunk in bytes.utf8_chunks() {
        out.write_all(chunk.valid().as_bytes())?;
        for b in chunk.invalid() {
            write!(out, "\\x{b:02x}")?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn show(b: Option<&[u8]>) -> String {
        let mut v = Vec::new();
        write_bytes(&mut v, b).unwrap();
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn escapes_only_invalid_bytes() {
        assert_eq!(show(Some("héllo".as_bytes())), "héllo");
        assert_eq!(show(Some(b"a\xffb\xc3")), "a\\xffb\\xc3");
        assert_eq!(show(None), "null");
    }
}
