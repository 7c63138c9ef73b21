//! Policy sets and messages for the benchmarks, made the same way every run.
//!
//! The policies are a third substring (`contains`), a third regex, and a third
//! key-value with a numeric comparison, each keyed on its own made-up word, as an ops
//! team's policies are on their own services. The messages are 300 bytes of such words
//! and `key=value` pairs, each one different, so nothing is helped by repetition.

/// A deterministic generator, so runs are comparable.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// The seed of the policy set of `n` policies.
pub fn policy_seed(n: usize) -> Rng {
    Rng(0x7269_706c_696e_6521 ^ n as u64)
}

/// The seed of the messages.
pub fn message_seed() -> Rng {
    Rng(0x6d65_7373_6167_6573)
}

/// A made-up word such as `kvoratel`: service and host names of an imaginary fleet.
pub fn word(rng: &mut Rng) -> String {
    const SYLLABLES: &[&str] = &[
        "ka", "vo", "ra", "tel", "min", "so", "dre", "lux", "pa", "qen", "zor", "bi", "ful", "gat",
        "hy", "jo",
    ];
    (0..4)
        .map(|_| SYLLABLES[(rng.next() % SYLLABLES.len() as u64) as usize])
        .collect()
}

/// `n` policies, a third of each kind, as one YAML document; `extra` is appended to
/// each policy (indented as its other keys), for example a `notify:` list.
pub fn policies(n: usize, rng: &mut Rng, extra: &str) -> String {
    let mut text = String::from("policies:\n");
    for i in 0..n {
        let w = word(rng);
        let body = match i % 3 {
            0 => format!("conditions: [{{field: message, contains: '{w} failed'}}]"),
            1 => {
                format!("conditions: [{{field: message, regex: '\\b{w}-\\d+ (timeout|refused)'}}]")
            }
            _ => format!(
                "extract: [{{kv: {{}}}}]\n    conditions: [{{field: {w}_ms, gt: {}}}]",
                100 + i
            ),
        };
        text.push_str(&format!("  - name: p{i}\n    {body}\n{extra}"));
    }
    text
}

/// A 300-byte log-like message of random words and a few key=value pairs.
pub fn message(rng: &mut Rng) -> String {
    let mut text = String::with_capacity(320);
    while text.len() < 280 {
        let w = word(rng);
        match rng.next() % 5 {
            0 => text.push_str(&format!("{w}_ms={} ", rng.next() % 1000)),
            1 => text.push_str(&format!("{w}-{} ", rng.next() % 100)),
            _ => text.push_str(&format!("{w} ")),
        }
    }
    text.truncate(300);
    text
}
