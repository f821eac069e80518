//! The Internet checksum (RFC 1071) and its incremental update (RFC 1624).
//!
//! [`Checksum`] is a running one's-complement sum that bytes can be added to and taken away
//! from; `finalize` folds and complements it into the value written in a header. The
//! pseudo-header helpers cover TCP, UDP and ICMPv6 over IPv4 and IPv6. ICMPv4 has no
//! pseudo-header. A UDP checksum of zero means "not computed" (RFC 768); over IPv6 that is
//! only allowed for tunnel encapsulations (RFC 6935/6936), which is what Geneve uses.

/// A running Internet checksum: the unfolded one's-complement sum of 16-bit words.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Checksum {
    sum: u64,
}

impl Checksum {
    pub const fn new() -> Self {
        Self { sum: 0 }
    }

    /// Start from a checksum as found in a header, to update it incrementally.
    pub const fn from_header(csum: u16) -> Self {
        Self {
            sum: (!csum) as u64,
        }
    }

    /// The sum of `bytes` (an odd trailing byte is padded with zero, as RFC 1071 says).
    pub fn of(bytes: &[u8]) -> Self {
        let mut c = Self::new();
        c.add_bytes(bytes);
        c
    }

    /// Add bytes that start at an even offset of the checksummed data.
    ///
    /// The one's-complement sum does not depend on byte order (RFC 1071 §2(B)): whole
    /// 64-bit words are added in native order into a 128-bit accumulator (two instructions
    /// a word, no carry lost) and the folded result is put in network order once.
    pub fn add_bytes(&mut self, bytes: &[u8]) {
        let mut acc: u128 = 0;
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            acc += u128::from(u64::from_ne_bytes(w));
        }
        // The tail keeps its position in the word (zero-padded), as RFC 1071 pads an odd
        // last byte.
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            if let Some(d) = w.get_mut(..rest.len()) {
                d.copy_from_slice(rest);
            }
            acc += u128::from(u64::from_ne_bytes(w));
        }
        // Fold 128 -> 64 -> 32 -> 16 bits with end-around carries.
        let (s, carry) = (acc as u64).overflowing_add((acc >> 64) as u64);
        let mut s = (s & 0xffff_ffff) + (s >> 32) + u64::from(carry);
        while s >> 16 != 0 {
            s = (s & 0xffff) + (s >> 16);
        }
        self.add_sum(u64::from(u16::from_be(s as u16)));
    }

    /// Take away bytes previously added (same alignment rules as `add_bytes`).
    pub fn sub_bytes(&mut self, bytes: &[u8]) {
        let other = Self::of(bytes);
        self.sub(other);
    }

    pub fn add_u16(&mut self, v: u16) {
        self.add_sum(u64::from(v));
    }

    pub fn sub_u16(&mut self, v: u16) {
        self.add_sum(u64::from(!v));
    }

    pub fn add_u32(&mut self, v: u32) {
        self.add_sum(u64::from(v >> 16) + u64::from(v & 0xffff));
    }

    /// Add another running sum.
    pub fn add(&mut self, other: Self) {
        self.add_sum(other.sum);
    }

    /// Take away another running sum (one's-complement subtraction is adding the complement).
    pub fn sub(&mut self, other: Self) {
        self.add_u16(!other.fold());
    }

    fn add_sum(&mut self, v: u64) {
        let (s, carry) = self.sum.overflowing_add(v);
        self.sum = s + u64::from(carry);
    }

    /// The folded 16-bit one's-complement sum (not complemented).
    pub fn fold(&self) -> u16 {
        let mut s = self.sum;
        while s >> 16 != 0 {
            s = (s & 0xffff) + (s >> 16);
        }
        s as u16
    }

    /// The value to write into a header checksum field.
    pub fn finalize(&self) -> u16 {
        !self.fold()
    }

    /// The value to write into a UDP checksum field: a computed zero is sent as 0xffff,
    /// because zero on the wire means "no checksum".
    pub fn finalize_udp(&self) -> u16 {
        match self.finalize() {
            0 => 0xffff,
            c => c,
        }
    }
}

/// RFC 1624 eqn. 3: the new header checksum after one 16-bit word changed from `old` to
/// `new`: HC' = ~(~HC + ~m + m').
pub fn update_u16(csum: u16, old: u16, new: u16) -> u16 {
    let mut c = Checksum::from_header(csum);
    c.sub_u16(old);
    c.add_u16(new);
    c.finalize()
}

/// As [`update_u16`] for a run of bytes of equal length (an address, say) that starts at an
/// even offset.
pub fn update_bytes(csum: u16, old: &[u8], new: &[u8]) -> u16 {
    let mut c = Checksum::from_header(csum);
    c.sub_bytes(old);
    c.add_bytes(new);
    c.finalize()
}

/// The IPv4 pseudo-header sum for TCP/UDP: addresses, protocol and the L4 length.
pub fn pseudo_v4(src: [u8; 4], dst: [u8; 4], proto: u8, l4_len: u16) -> Checksum {
    let mut c = Checksum::new();
    c.add_bytes(&src);
    c.add_bytes(&dst);
    c.add_u16(u16::from(proto));
    c.add_u16(l4_len);
    c
}

/// The IPv6 pseudo-header sum (RFC 8200 §8.1) for TCP/UDP/ICMPv6.
pub fn pseudo_v6(src: [u8; 16], dst: [u8; 16], next_header: u8, l4_len: u32) -> Checksum {
    let mut c = Checksum::new();
    c.add_bytes(&src);
    c.add_bytes(&dst);
    c.add_u32(l4_len);
    c.add_u16(u16::from(next_header));
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::{vec, vec::Vec};

    // The example of RFC 1071 §3: the words 0001 f203 f4f5 f6f7 sum to ddf2.
    #[test]
    fn rfc1071_example_sum() {
        let c = Checksum::of(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]);
        assert_eq!(c.fold(), 0xddf2);
        assert_eq!(c.finalize(), !0xddf2);
    }

    /// The word-at-a-time sum equals the textbook one (16-bit big-endian words, end-around
    /// carries) for every length and for sums that wrap many times.
    #[test]
    fn add_bytes_equals_the_naive_sum() {
        fn naive(b: &[u8]) -> u16 {
            let mut s: u64 = 0;
            for w in b.chunks(2) {
                let hi = u64::from(w[0]) << 8;
                s += hi | w.get(1).map_or(0, |&x| u64::from(x));
            }
            while s >> 16 != 0 {
                s = (s & 0xffff) + (s >> 16);
            }
            s as u16
        }
        let mut x: u32 = 0x1234_5678;
        let mut data = Vec::new();
        for len in 0..300 {
            data.clear();
            for _ in 0..len {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                data.push(x as u8);
            }
            assert_eq!(Checksum::of(&data).fold(), naive(&data), "len {len}");
            let ff = vec![0xffu8; len];
            assert_eq!(Checksum::of(&ff).fold(), naive(&ff), "0xff x {len}");
        }
    }

    #[test]
    fn odd_length_pads_with_zero() {
        assert_eq!(Checksum::of(&[0xab]).fold(), 0xab00);
        assert_eq!(Checksum::of(&[0x12, 0x34, 0xab]).fold(), 0x1234 + 0xab00);
    }

    #[test]
    fn long_input_matches_word_by_word_sum() {
        let data: alloc::vec::Vec<u8> = (0..1501u32).map(|i| (i * 7 + 3) as u8).collect();
        let mut s: u32 = 0;
        for w in data.chunks(2) {
            let v = if w.len() == 2 {
                u16::from_be_bytes([w[0], w[1]])
            } else {
                u16::from(w[0]) << 8
            };
            s += u32::from(v);
        }
        while s >> 16 != 0 {
            s = (s & 0xffff) + (s >> 16);
        }
        assert_eq!(Checksum::of(&data).fold(), s as u16);
    }

    // A real IPv4 header (from RFC 1071 discussions and common captures): checksum b861.
    #[test]
    fn ipv4_header_checksum() {
        let mut hdr = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        let c = Checksum::of(&hdr).finalize();
        assert_eq!(c, 0xb861);
        hdr[10..12].copy_from_slice(&c.to_be_bytes());
        assert_eq!(Checksum::of(&hdr).fold(), 0xffff);
    }

    #[test]
    fn incremental_update_equals_recompute() {
        let mut hdr = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb8, 0x61, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        let new_src = [10, 60, 1, 20];
        let upd = update_bytes(0xb861, &hdr[12..16], &new_src);
        hdr[12..16].copy_from_slice(&new_src);
        hdr[10..12].copy_from_slice(&[0, 0]);
        assert_eq!(upd, Checksum::of(&hdr).finalize());
        // TTL decrement through the 16-bit word holding TTL and protocol.
        let old = u16::from_be_bytes([hdr[8], hdr[9]]);
        hdr[10..12].copy_from_slice(&upd.to_be_bytes());
        hdr[8] -= 1;
        let new = u16::from_be_bytes([hdr[8], hdr[9]]);
        let upd2 = update_u16(upd, old, new);
        hdr[10..12].copy_from_slice(&[0, 0]);
        assert_eq!(upd2, Checksum::of(&hdr).finalize());
    }

    #[test]
    fn sub_undoes_add() {
        let mut c = Checksum::of(&[1, 2, 3, 4, 5, 6]);
        let before = c.fold();
        c.add_bytes(&[0xde, 0xad, 0xbe, 0xef]);
        c.sub_bytes(&[0xde, 0xad, 0xbe, 0xef]);
        assert_eq!(c.fold(), before);
    }

    #[test]
    fn udp_zero_is_sent_as_ffff() {
        // A sum of 0xffff complements to zero.
        let c = Checksum::of(&[0xff, 0xff]);
        assert_eq!(c.finalize(), 0);
        assert_eq!(c.finalize_udp(), 0xffff);
    }

    #[test]
    fn pseudo_headers_sum_their_fields() {
        let p4 = pseudo_v4([10, 0, 0, 1], [10, 0, 0, 2], 17, 8);
        let expect = 0x0a00 + 0x0001 + 0x0a00 + 0x0002 + 17 + 8;
        assert_eq!(p4.fold(), expect);
        let mut s6 = [0u8; 16];
        s6[15] = 1;
        let p6 = pseudo_v6(s6, s6, 58, 0x0001_0008);
        assert_eq!(p6.fold(), 1 + 1 + 1 + 8 + 58);
    }
}
