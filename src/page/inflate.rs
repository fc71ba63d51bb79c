//! A small inflate (RFC 1951) for the device page: the binary holds the page
//! gzipped only, and a client that does not accept gzip (curl, scripts) gets it
//! decoded into the response buffer. Written after zlib's `puff`: canonical
//! Huffman codes decoded bit by bit, about 2 KiB of code instead of a second,
//! uncompressed copy of the page. Any malformed input is `None`, never a panic.

/// Bits of the input, least significant first.
struct Bits<'a> {
    data: &'a [u8],
    pos: usize,
    buf: u32,
    cnt: u32,
}

impl Bits<'_> {
    fn take(&mut self, n: u32) -> Option<u32> {
        while self.cnt < n {
            self.buf |= u32::from(*self.data.get(self.pos)?) << self.cnt;
            self.pos += 1;
            self.cnt += 8;
        }
        let v = self.buf & ((1u32 << n) - 1);
        self.buf = self.buf.checked_shr(n).unwrap_or(0);
        self.cnt -= n;
        Some(v)
    }
}

/// A canonical Huffman code: how many codes of each length, and the symbols in
/// code order.
struct Huffman {
    count: [u16; 16],
    symbol: [u16; 288],
}

impl Huffman {
    fn new(lengths: &[u8]) -> Option<Huffman> {
        let mut h = Huffman { count: [0; 16], symbol: [0; 288] };
        for &l in lengths {
            h.count[usize::from(l & 15)] += 1;
        }
        let mut offs = [0u16; 16];
        for len in 1..15 {
            offs[len + 1] = offs[len] + h.count[len];
        }
        for (sym, &l) in lengths.iter().enumerate() {
            if l != 0 {
                let slot = h.symbol.get_mut(usize::from(offs[usize::from(l & 15)]))?;
                *slot = u16::try_from(sym).ok()?;
                offs[usize::from(l & 15)] += 1;
            }
        }
        Some(h)
    }

    fn decode(&self, bits: &mut Bits<'_>) -> Option<usize> {
        let (mut code, mut first, mut index) = (0i32, 0i32, 0i32);
        for len in 1..16 {
            code |= i32::try_from(bits.take(1)?).ok()?;
            let count = i32::from(self.count[len]);
            if code - count < first {
                return self.symbol.get(usize::try_from(index + code - first).ok()?).map(|&s| usize::from(s));
            }
            index += count;
            first = (first + count) << 1;
            code <<= 1;
        }
        None
    }
}

const LEN_BASE: [u16; 29] =
    [3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258];
const LEN_EXTRA: [u8; 29] = [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0];
const DIST_BASE: [u16; 30] = [
    1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145,
    8193, 12289, 16385, 24577,
];
const DIST_EXTRA: [u8; 30] =
    [0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13];

/// Appends the decoded `deflate` stream to `out`; `None` if it is malformed
/// (`out` then holds part of it).
pub fn inflate(deflate: &[u8], out: &mut Vec<u8>) -> Option<()> {
    let start = out.len();
    let mut bits = Bits { data: deflate, pos: 0, buf: 0, cnt: 0 };
    loop {
        let last = bits.take(1)?;
        match bits.take(2)? {
            0 => {
                bits.buf = 0;
                bits.cnt = 0;
                let head = deflate.get(bits.pos..bits.pos + 4)?;
                let len = usize::from(u16::from_le_bytes([head[0], head[1]]));
                if u16::from_le_bytes([head[2], head[3]]) != !(len as u16) {
                    return None;
                }
                out.extend_from_slice(deflate.get(bits.pos + 4..bits.pos + 4 + len)?);
                bits.pos += 4 + len;
            }
            1 => {
                let mut lengths = [8u8; 288];
                lengths[144..256].fill(9);
                lengths[256..280].fill(7);
                codes(&mut bits, out, start, &Huffman::new(&lengths)?, &Huffman::new(&[5; 30])?)?;
            }
            2 => {
                let (lit, dist) = dynamic(&mut bits)?;
                codes(&mut bits, out, start, &lit, &dist)?;
            }
            _ => return None,
        }
        if last == 1 {
            return Some(());
        }
    }
}

fn dynamic(bits: &mut Bits<'_>) -> Option<(Huffman, Huffman)> {
    const ORDER: [usize; 19] = [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15];
    let nlen = bits.take(5)? as usize + 257;
    let ndist = bits.take(5)? as usize + 1;
    let ncode = bits.take(4)? as usize + 4;
    if nlen > 286 || ndist > 30 {
        return None;
    }
    let mut lengths = [0u8; 320];
    for &i in &ORDER[..ncode] {
        lengths[i] = bits.take(3)? as u8;
    }
    let code = Huffman::new(&lengths[..19])?;
    lengths[..19].fill(0);
    let mut i = 0;
    while i < nlen + ndist {
        let sym = code.decode(bits)?;
        let (value, times) = match sym {
            0..=15 => (sym as u8, 1),
            16 => (*lengths.get(i.checked_sub(1)?)?, 3 + bits.take(2)? as usize),
            17 => (0, 3 + bits.take(3)? as usize),
            _ => (0, 11 + bits.take(7)? as usize),
        };
        lengths.get_mut(i..i + times)?.fill(value);
        i += times;
    }
    if i != nlen + ndist {
        return None;
    }
    Some((Huffman::new(&lengths[..nlen])?, Huffman::new(&lengths[nlen..nlen + ndist])?))
}

fn codes(bits: &mut Bits<'_>, out: &mut Vec<u8>, start: usize, lit: &Huffman, dist: &Huffman) -> Option<()> {
    loop {
        let sym = lit.decode(bits)?;
        if sym < 256 {
            out.push(sym as u8);
        } else if sym == 256 {
            return Some(());
        } else {
            let s = sym - 257;
            let len = usize::from(*LEN_BASE.get(s)?) + bits.take(u32::from(LEN_EXTRA[s]))? as usize;
            let d = dist.decode(bits)?;
            let back = usize::from(*DIST_BASE.get(d)?) + bits.take(u32::from(DIST_EXTRA[d]))? as usize;
            if back > out.len() - start {
                return None;
            }
            for _ in 0..len {
                out.push(out[out.len() - back]);
            }
        }
    }
}
