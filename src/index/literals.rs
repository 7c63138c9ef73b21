//! Which of many literals occur in a text, at a cost that barely grows with their number.
//!
//! A few hundred literals are searched with an Aho-Corasick automaton, whose vectorised
//! prefilters skip most of a text. Over thousands of literals the automaton outgrows the
//! CPU's caches and costs a memory access per byte of text, so these are found through
//! their *anchors* instead: each literal's first 8 bytes, or 4, or 3, or all of it when
//! shorter. At each position of the text the next 8 bytes are read once; for each anchor
//! width in use they are hashed and looked up, first in a bitmap (32 KB for ten
//! thousand literals, small enough to stay in the nearest cache) that turns away almost
//! every position, then in the bucket of anchors with that hash. An anchor keeps the 8 bytes
//! of its literal that follow it, so the literal itself is only read when the text holds
//! its first 16 bytes.

use aho_corasick::{AhoCorasick, MatchKind};

/// Up to this many literals are searched with Aho-Corasick: in `benches/matching.rs`
/// it is the faster of the two up to a few hundred.
const AUTOMATON_UP_TO: usize = 300;

/// The anchor widths, longest first: a literal is anchored on the longest that fits.
const WIDTHS: [usize; 3] = [8, 4, 3];

/// Bits of filter per anchor, at least. Each anchor sets two bits of one 64-bit word,
/// so that about one position in fifty that holds no anchor passes the filter and has
/// its bucket looked at.
const FILTER_BITS_PER_ANCHOR: usize = 16;

/// A set of literals to look for.
#[derive(Debug, Default)]
pub struct Literals {
    literals: Vec<Box<[u8]>>,
    search: Search,
}

#[derive(Debug, Default)]
enum Search {
    #[default]
    Nothing,
    Automaton(AhoCorasick),
    /// One table per anchor width in use, longest first.
    Anchors(Vec<Table>),
}

/// A literal's anchor with the (up to) 8 bytes that follow it, so that a hash collision,
/// or a text that shares only the start of a literal, is turned away by comparing words
/// without reading the literal itself.
#[derive(Debug, Clone, Copy, Default)]
struct Anchor {
    key: u64,
    next: u64,
    /// How many bytes of the literal follow the anchor.
    rest: u32,
    id: u32,
}

/// The literals anchored on `width` bytes.
#[derive(Debug)]
struct Table {
    width: usize,
    /// Keeps the low `width` bytes of the word read at a position.
    mask: u64,
    /// Word `h >> filter_shift` has the bits [`filter_bits`] of `h` set when some
    /// anchor hashes to `h`.
    filter: Vec<u64>,
    filter_shift: u32,
    /// The anchors of bucket `b` are `anchors[starts[b]..starts[b + 1]]`.
    starts: Vec<u32>,
    anchors: Vec<Anchor>,
    bucket_shift: u32,
}

impl Literals {
    /// Indexes `literals`; the id of each is its position. Empty literals are never
    /// reported, since they say nothing about a text.
    pub fn new(literals: Vec<Vec<u8>>) -> Self {
        Self::searched(literals, AUTOMATON_UP_TO)
    }

    /// Indexes `literals`, with an automaton when there are at most `automaton_up_to`.
    fn searched(literals: Vec<Vec<u8>>, automaton_up_to: usize) -> Self {
        let search = match literals.len() {
            0 => Search::Nothing,
            n if n <= automaton_up_to => AhoCorasick::builder()
                .match_kind(MatchKind::Standard)
                .build(&literals)
                .map(Search::Automaton)
                .unwrap_or_else(|_| Search::Anchors(anchor_tables(&literals))),
            _ => Search::Anchors(anchor_tables(&literals)),
        };
        let literals = literals.into_iter().map(Vec::into_boxed_slice).collect();
        Literals { literals, search }
    }

    /// The ids of the literals that occur in `text`, ascending, each once.
    pub fn find(&self, text: &[u8]) -> Vec<u32> {
        let mut found = Vec::new();
        match &self.search {
            Search::Nothing => {}
            Search::Automaton(automaton) => {
                let matches = automaton.find_overlapping_iter(text);
                let ids = matches
                    .filter(|m| !m.is_empty())
                    .map(|m| m.pattern().as_u32());
                found.extend(ids);
            }
            Search::Anchors(tables) => self.find_anchored(tables, text, &mut found),
        }
        found.sort_unstable();
        found.dedup();
        found
    }

    fn find_anchored(&self, tables: &[Table], text: &[u8], found: &mut Vec<u32>) {
        for at in 0..text.len() {
            let bytes = word(text, at);
            let left = text.len() - at;
            for table in tables {
                if table.width > left {
                    continue;
                }
                let key = bytes & table.mask;
                for anchor in table.bucket(key) {
                    if anchor.key == key && self.follows(text, at + table.width, anchor) {
                        found.push(anchor.id);
                    }
                }
            }
        }
    }

    /// Whether the rest of `anchor`'s literal is in `text` at `at`.
    #[inline]
    fn follows(&self, text: &[u8], at: usize, anchor: &Anchor) -> bool {
        let rest = anchor.rest as usize;
        if at + rest > text.len() {
            return false;
        }
        if word(text, at) & mask(rest.min(8)) != anchor.next {
            return false;
        }
        // Only a literal more than 8 bytes longer than its anchor is read here.
        rest <= 8 || {
            let literal = &self.literals[anchor.id as usize];
            text[at + 8..at + rest] == literal[literal.len() - rest + 8..]
        }
    }
}

/// The anchor tables of `literals`, whose ids are their positions: each literal is
/// anchored on the longest width that fits it, a literal of one or two bytes on all of
/// it. Empty literals are left out.
fn anchor_tables(literals: &[Vec<u8>]) -> Vec<Table> {
    let width = |literal: &[u8]| {
        let fits = WIDTHS.iter().find(|&&w| literal.len() >= w);
        fits.copied().unwrap_or(literal.len())
    };
    let mut widths: Vec<usize> = literals.iter().map(|l| width(l)).collect();
    widths.sort_unstable_by(|a, b| b.cmp(a));
    widths.dedup();
    widths
        .into_iter()
        .filter(|&w| w > 0)
        .map(|w| {
            let anchors: Vec<Anchor> = literals
                .iter()
                .enumerate()
                .filter(|(_, l)| width(l) == w)
                .map(|(id, l)| Anchor::of(l, w, id as u32))
                .collect();
            Table::new(w, anchors)
        })
        .collect()
}

impl Anchor {
    fn of(literal: &[u8], width: usize, id: u32) -> Self {
        let rest = literal.len() - width;
        Anchor {
            key: word(literal, 0) & mask(width),
            next: word(literal, width) & mask(rest.min(8)),
            rest: rest as u32,
            id,
        }
    }
}

impl Table {
    /// The anchors that hash like `key`: for almost every key, none.
    #[inline]
    fn bucket(&self, key: u64) -> &[Anchor] {
        let h = hash(key);
        let bits = filter_bits(h);
        if self.filter[(h >> self.filter_shift) as usize] & bits != bits {
            return &[];
        }
        let bucket = (h >> self.bucket_shift) as usize;
        &self.anchors[self.starts[bucket] as usize..self.starts[bucket + 1] as usize]
    }

    fn new(width: usize, anchors: Vec<Anchor>) -> Self {
        // Powers of two (at least 8 filter words and 2 buckets), so that each is picked
        // by the top bits of a hash with a shift under 64.
        let words = (anchors.len() * FILTER_BITS_PER_ANCHOR / 64)
            .next_power_of_two()
            .max(8);
        let buckets = (anchors.len() * 2).next_power_of_two().max(2);
        let filter_shift = 64 - words.trailing_zeros();
        let bucket_shift = 64 - buckets.trailing_zeros();
        let mut filter = vec![0u64; words];
        let mut counts = vec![0u32; buckets + 1];
        for anchor in &anchors {
            let h = hash(anchor.key);
            filter[(h >> filter_shift) as usize] |= filter_bits(h);
            counts[(h >> bucket_shift) as usize + 1] += 1;
        }
        // Counts become start offsets; then each anchor goes into its bucket's next slot.
        for b in 1..counts.len() {
            counts[b] += counts[b - 1];
        }
        let starts = counts.clone();
        let mut next = counts;
        let mut placed = vec![Anchor::default(); anchors.len()];
        for anchor in anchors {
            let bucket = (hash(anchor.key) >> bucket_shift) as usize;
            placed[next[bucket] as usize] = anchor;
            next[bucket] += 1;
        }
        Table {
            width,
            mask: mask(width),
            filter,
            filter_shift,
            starts,
            anchors: placed,
            bucket_shift,
        }
    }
}

/// Up to 8 bytes of `text` from `at`, little-endian, zero past its end.
#[inline]
fn word(text: &[u8], at: usize) -> u64 {
    match text.get(at..at + 8) {
        Some(bytes) => u64::from_le_bytes(bytes.try_into().unwrap_or_default()),
        None => {
            let mut bytes = [0u8; 8];
            let tail = &text[at.min(text.len())..];
            bytes[..tail.len()].copy_from_slice(tail);
            u64::from_le_bytes(bytes)
        }
    }
}

/// Keeps the low `width` bytes of a word.
fn mask(width: usize) -> u64 {
    if width >= 8 {
        u64::MAX
    } else {
        (1u64 << (8 * width)) - 1
    }
}

/// The two bits an anchor with hash `h` sets in its filter word. They come from the
/// middle of the hash; its top bits pick the word and the bucket.
#[inline]
fn filter_bits(h: u64) -> u64 {
    (1 << ((h >> 32) & 63)) | (1 << ((h >> 38) & 63))
}

/// Spreads every byte of `key` over the high bits, which pick the filter word and bucket.
#[inline]
fn hash(key: u64) -> u64 {
    (key ^ key.rotate_right(29)).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Both searches, which must agree.
    fn both(literals: &[&str]) -> [Literals; 2] {
        let bytes: Vec<Vec<u8>> = literals.iter().map(|l| l.as_bytes().to_vec()).collect();
        [
            Literals::searched(bytes.clone(), usize::MAX),
            Literals::searched(bytes, 0),
        ]
    }

    fn found(literals: &[&str], text: &str) -> Vec<u32> {
        let [automaton, anchors] = both(literals);
        let found = anchors.find(text.as_bytes());
        assert_eq!(automaton.find(text.as_bytes()), found, "in {text:?}");
        found
    }

    #[test]
    fn finds_literals_of_every_width_anywhere_once_each() {
        let literals = [
            "disk full",
            "error",
            "oom",
            "k8",
            "!",
            "timeout while",
            "never",
        ];
        let text = "error: disk full on k8s-node; error again: oom! timeout while";
        assert_eq!(found(&literals, text), vec![0, 1, 2, 3, 4, 5]);
        // At the very end, and the whole text.
        assert_eq!(found(&literals, "an oom"), vec![2]);
        assert_eq!(found(&literals, "error"), vec![1]);
        assert_eq!(found(&literals, "erro"), Vec::<u32>::new());
        assert_eq!(found(&literals, ""), Vec::<u32>::new());
    }

    #[test]
    fn literals_that_share_an_anchor_are_told_apart() {
        let literals = [
            "deployment failed",
            "deployment finished",
            "deploy",
            "deployed",
        ];
        assert_eq!(found(&literals, "deployment finished ok"), vec![1, 2]);
        assert_eq!(found(&literals, "was deployed"), vec![2, 3]);
        // The same first 16 bytes: only the rest tells them apart.
        let literals = [
            "connection refused by upstream",
            "connection refused by database",
        ];
        assert_eq!(found(&literals, "connection refused by database"), vec![1]);
        assert_eq!(found(&literals, "connection refused by"), Vec::<u32>::new());
    }

    #[test]
    fn agrees_with_a_plain_search_on_many_literals() {
        // A small deterministic generator: literals and texts over a few syllables, so
        // that anchors collide and literals overlap often.
        let syllables = ["qa", "zu", "lim", "or", "e", "tt", "x"];
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let mut next = move |n: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % n as u64) as usize
        };
        let words = |count: usize, next: &mut dyn FnMut(usize) -> usize| {
            (0..count)
                .map(|_| syllables[next(syllables.len())])
                .collect::<String>()
        };
        let literals: Vec<String> = (0..3000)
            .map(|_| {
                let count = 1 + next(10);
                words(count, &mut next)
            })
            .collect();
        let refs: Vec<&str> = literals.iter().map(String::as_str).collect();
        let searches = both(&refs);
        for _ in 0..300 {
            let count = next(60);
            let text = words(count, &mut next);
            let want: Vec<u32> = (0..refs.len() as u32)
                .filter(|&i| text.contains(refs[i as usize]))
                .collect();
            for search in &searches {
                assert_eq!(search.find(text.as_bytes()), want, "in {text:?}");
            }
        }
    }
}
