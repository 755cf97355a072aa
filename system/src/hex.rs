//! Lower-case hexadecimal, for digests on the wire (signatures, request fingerprints) and
//! seeded ids. Signing, fingerprinting and id generation run on every request, so encoding
//! is a table lookup rather than a `format!` per byte or per id.

const DIGITS: &[u8; 16] = b"0123456789abcdef";

/// `bytes` as lower-case hex, two digits per byte.
pub(crate) fn encode(bytes: &[u8]) -> String {
    let mut text = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        text.push(char::from(DIGITS[usize::from(byte >> 4)]));
        text.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    text
}

/// Appends `value` to `text` as lower-case hex, zero-padded to at least `digits_min` digits:
/// what `{value:0digits_min$x}` formats, without the formatting machinery.
pub(crate) fn push_u64(text: &mut String, value: u64, digits_min: usize) {
    let digits = (16 - value.leading_zeros() as usize / 4).max(digits_min.clamp(1, 16));
    for index in (0..digits).rev() {
        let nibble = (value >> (index * 4)) & 0x0f;
        text.push(char::from(DIGITS[usize::try_from(nibble).unwrap_or(0)]));
    }
}

/// The bytes of hex `text` (either case), or `None` if it is not an even number of hex
/// digits.
pub(crate) fn decode(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_matches_format_and_round_trips() {
        // Proves the table encoding is the `{:02x}` encoding it replaced, for every byte
        // value, and that decode inverts it and refuses odd lengths and non-hex digits.
        let all: Vec<u8> = (0..=255).collect();
        let formatted: String = all.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(encode(&all), formatted);
        assert_eq!(decode(&formatted), Some(all));
        assert_eq!(decode("ABcd"), Some(vec![0xab, 0xcd]));
        assert_eq!(decode("abc"), None);
        assert_eq!(decode("zz"), None);
        assert_eq!(encode(&[]), "");
    }

    #[test]
    fn push_u64_matches_format() {
        // Proves the table encoding of a number is what `{:x}` and `{:016x}` format, at the
        // edges (0, one digit, every power of 16, the maximum) and over a spread of values.
        let mut values = vec![0, 1, 9, 10, 15, 16, 255, 256, u64::MAX, u64::MAX - 1];
        values.extend((0..64).map(|shift| 1_u64 << shift));
        values.extend((0..64).map(|shift| (1_u64 << shift) - 1));
        values.extend((1..2_000_u64).map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15)));
        for value in values {
            let mut text = String::from("id_");
            push_u64(&mut text, value, 16);
            push_u64(&mut text, value, 1);
            push_u64(&mut text, value, 0);
            assert_eq!(
                text,
                format!("id_{value:016x}{value:x}{value:x}"),
                "{value}"
            );
        }
    }
}
