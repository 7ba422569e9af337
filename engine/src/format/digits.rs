//! Integers written as decimal text, the output formats' hot path: eight digits at a time
//! by multiplication (no division per digit), straight into the output without a call to
//! `memcpy` (a fixed-size copy, then the length set back).

/// Appends `n` in decimal, as `itoa` (and `Display`) write it.
#[inline(always)]
pub(crate) fn push_i64(out: &mut Vec<u8>, n: i64) {
    if n < 0 {
        out.push(b'-');
    }
    push_u64(out, n.unsigned_abs());
}

/// Appends `n` in decimal.
#[inline(always)]
pub(crate) fn push_u64(out: &mut Vec<u8>, n: u64) {
    const E8: u64 = 100_000_000;
    let mut text = [0u8; 16];
    let len = if n < 10_000 {
        let (word, len) = leading(four_digits(n as u32), 4);
        text[..4].copy_from_slice(&(word as u32).to_le_bytes());
        len
    } else if n < E8 {
        let (word, len) = leading(eight_digits(n as u32), 8);
        text[..8].copy_from_slice(&word.to_le_bytes());
        len
    } else if n < E8 * E8 {
        let (high, low) = (n / E8, n % E8);
        let (word, len) = leading(eight_digits(high as u32), 8);
        let low = eight_digits(low as u32) + ASCII_ZEROS;
        // The low digits go right after the high ones: both words in one 16-byte value.
        let both = u128::from(word) | (u128::from(low) << (8 * len));
        text = both.to_le_bytes();
        len + 8
    } else {
        // Beyond sixteen digits (rare): itoa.
        out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
        return;
    };
    push_prefix_of(out, &text, len);
}

/// Appends the first `len` bytes of `text` by copying all of it (one fixed-size move the
/// compiler lays out inline) and taking the rest back.
#[inline(always)]
pub(crate) fn push_prefix_of<const N: usize>(out: &mut Vec<u8>, text: &[u8; N], len: usize) {
    let at = out.len();
    out.extend_from_slice(text);
    out.truncate(at + len.min(N));
}

const ASCII_ZEROS: u64 = 0x3030_3030_3030_3030;

/// The eight decimal digits of `n` (below 10^8, with leading zeros), most significant in
/// the lowest byte, each as its value 0-9. Splits in lanes: 4 + 4 digits, each into 2 + 2,
/// each into 1 + 1, dividing by 10^4, 100 and 10 with multiply-and-shift, all lanes at once.
#[inline(always)]
fn eight_digits(n: u32) -> u64 {
    let n = u64::from(n);
    // Lanes of 32 bits: the high four digits, then the low four.
    let x = (n / 10_000) | ((n % 10_000) << 32);
    // v / 100 is (v * 10486) >> 20 for every v below 10^4.
    let hundreds = ((x * 10_486) >> 20) & 0x0000_007F_0000_007F;
    let x = hundreds | ((x - hundreds * 100) << 16);
    // v / 10 is (v * 103) >> 10 for every v below 100.
    let tens = ((x * 103) >> 10) & 0x000F_000F_000F_000F;
    tens | ((x - tens * 10) << 8)
}

/// `eight_digits` for `n` below 10^4: four digits in the low four bytes.
#[inline(always)]
fn four_digits(n: u32) -> u64 {
    let x = u64::from(n);
    let hundreds = (x * 10_486) >> 20;
    let x = hundreds | ((x - hundreds * 100) << 16);
    let tens = ((x * 103) >> 10) & 0x000F_000F;
    tens | ((x - tens * 10) << 8)
}

/// The `width` digits of `digits` (as `eight_digits` lays them out) without their leading
/// zeros, as ASCII from the lowest byte, and how many there are (zero keeps one).
#[inline(always)]
fn leading(digits: u64, width: usize) -> (u64, usize) {
    // Leading zero digits are the lowest zero bytes.
    let zeros = ((digits | (1 << (8 * (width - 1)))).trailing_zeros() / 8) as usize;
    let ascii = digits + (ASCII_ZEROS >> (8 * (8 - width)));
    (ascii >> (8 * zeros), width - zeros)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(n: i64) -> String {
        let mut out = vec![b'x'];
        push_i64(&mut out, n);
        String::from_utf8(out).unwrap()
    }

    /// Every digit count, both sides of every power of ten, the extremes and a million
    /// pseudo-random values of every size agree with `Display`.
    #[test]
    fn integers_are_written_as_display_writes_them() {
        let check = |n: i64| assert_eq!(text(n), format!("x{n}"), "{n}");
        for n in [0, 1, -1, 9, 10, 99, 100, i64::MAX, i64::MIN, i64::MIN + 1] {
            check(n);
        }
        let mut p: i64 = 1;
        while let Some(next) = p.checked_mul(10) {
            for n in [p - 1, p, p + 1, next - 1, 2 * p, 5 * p - 1] {
                check(n);
                check(-n);
            }
            p = next;
        }
        for n in 0..100_000 {
            check(n);
        }
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..1_000_000 {
            let x = crate::format::xorshift(&mut x);
            // Every size: shift away a random number of bits.
            let n = (x >> (x % 64)) as i64;
            check(n);
            check(n.wrapping_neg());
        }
        // Every value below 10^8 splits exactly (checked directly, not through text).
        for n in (0..100_000_000u32)
            .step_by(997)
            .chain(99_999_990..100_000_000)
        {
            let digits = eight_digits(n).to_le_bytes();
            let value = digits.iter().fold(0u32, |v, &d| v * 10 + u32::from(d));
            assert_eq!(value, n);
            assert!(digits.iter().all(|&d| d < 10));
        }
    }

    /// A prefix is the bytes asked for, after what was there, whatever the capacity.
    #[test]
    fn a_prefix_of_a_fixed_copy_is_exactly_its_bytes() {
        let text = *b"0123456789abcdef";
        for len in 0..=16 {
            let mut out = b"ab".to_vec();
            out.shrink_to_fit();
            push_prefix_of(&mut out, &text, len);
            assert_eq!(out, [b"ab", &text[..len]].concat());
        }
    }
}
