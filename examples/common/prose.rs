//! Text that compresses like what people and models write: words of `words.txt` (about 3,000
//! common English words, roughly the most frequent first, drawn with a Zipf-like law) and common
//! phrases of `phrases.txt`, in capitalised, punctuated sentences with numbers, and now and then
//! a list, a code block or a JSON snippet. Deterministic from a seed, with no corpus beyond the
//! two lists, so a benchmark run can be repeated exactly.
//!
//! Real prompts and answers deflate about three times; a letter repeated deflates a hundred times
//! and lets the server's inflate and copy paths look cheaper than they are.

use std::fmt::Write;

/// SplitMix64: small, fast and good enough to pick words; the same seed gives the same text.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        mix64(self.0)
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `[low, high]`.
    pub fn between(&mut self, low: u64, high: u64) -> u64 {
        low + self.next_u64() % (high - low + 1)
    }

    pub fn chance(&mut self, probability: f64) -> bool {
        self.unit() < probability
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.next_u64() as usize % items.len()]
    }
}

/// SplitMix64's finaliser: a bijection on `u64`, so distinct inputs give distinct, random-looking
/// outputs (ids made from counters that must stay unique).
pub fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

const WORDS: &str = include_str!("words.txt");

/// Zipf-Mandelbrot parameters: the weight of the word of rank r is 1 / (r + OFFSET)^EXPONENT.
/// Chosen so that the text deflates about as much as English prose (gzip ratio about 3).
const EXPONENT: f64 = 1.1;
const OFFSET: f64 = 2.7;

/// Word pairs and triples that English repeats far more often than its words' frequencies
/// predict; they give the text the longer repeated strings a compressor finds in real prose.
const PHRASES: &str = include_str!("phrases.txt");

pub struct Prose {
    words: Vec<&'static str>,
    phrases: Vec<&'static str>,
    /// Cumulative weights, normalised to end at 1.
    cumulative: Vec<f64>,
}

impl Default for Prose {
    fn default() -> Self {
        Prose::new()
    }
}

impl Prose {
    pub fn new() -> Prose {
        let words: Vec<&'static str> = WORDS.lines().filter(|w| !w.is_empty()).collect();
        let mut total = 0.0;
        let mut cumulative: Vec<f64> = (0..words.len())
            .map(|rank| {
                total += 1.0 / (rank as f64 + 1.0 + OFFSET).powf(EXPONENT);
                total
            })
            .collect();
        for c in &mut cumulative {
            *c /= total;
        }
        let phrases = PHRASES.lines().filter(|p| !p.is_empty()).collect();
        Prose {
            words,
            phrases,
            cumulative,
        }
    }

    pub fn word(&self, rng: &mut Rng) -> &'static str {
        let u = rng.unit();
        let rank = self.cumulative.partition_point(|c| *c < u);
        self.words[rank.min(self.words.len() - 1)]
    }

    /// A word from the rarer part of the list: names of things, identifiers, keys.
    pub fn rare_word(&self, rng: &mut Rng) -> &'static str {
        loop {
            let word = self.words[rng.between(150, self.words.len() as u64 - 1) as usize];
            if word.len() > 3 {
                return word;
            }
        }
    }

    /// `snake_case` of `parts` rare words.
    pub fn identifier(&self, rng: &mut Rng, parts: usize) -> String {
        let mut out = String::new();
        for i in 0..parts {
            if i > 0 {
                out.push('_');
            }
            out.push_str(self.rare_word(rng));
        }
        out
    }

    /// A few capitalised words, as in a title or a product name.
    pub fn title(&self, rng: &mut Rng, words: usize) -> String {
        let mut out = String::new();
        for i in 0..words {
            if i > 0 {
                out.push(' ');
            }
            push_capitalised(&mut out, self.rare_word(rng));
        }
        out
    }

    fn number(&self, rng: &mut Rng, out: &mut String) {
        let _ = match rng.between(0, 9) {
            0 => write!(out, "${}.{:02}", rng.between(1, 2_000), rng.between(0, 99)),
            1 => write!(out, "{}%", rng.between(1, 99)),
            2 => write!(out, "{}", rng.between(2015, 2026)),
            3 => write!(
                out,
                "v{}.{}.{}",
                rng.between(1, 9),
                rng.between(0, 30),
                rng.between(0, 20)
            ),
            4 => write!(out, "#{}", rng.between(10_000, 999_999)),
            5 => write!(out, "{}.{}", rng.between(0, 500), rng.between(0, 99)),
            6 => write!(
                out,
                "{}-{:02}-{:02}",
                rng.between(2023, 2026),
                rng.between(1, 12),
                rng.between(1, 28)
            ),
            _ => write!(out, "{}", rng.between(1, 1_000)),
        };
    }

    /// One sentence of 4 to 28 words, capitalised and punctuated, ending with `end`; words of
    /// `topic` come up again and again, as the subject of a text does.
    fn sentence_about(&self, rng: &mut Rng, topic: &[&str], end: char, out: &mut String) {
        let words = rng.between(4, 16) + rng.between(0, 12);
        for i in 0..words {
            if i > 0 {
                out.push(' ');
            }
            let roll = rng.unit();
            if roll < 0.025 {
                self.number(rng, out);
                continue;
            }
            let word = if roll < 0.3 {
                *rng.pick(&self.phrases)
            } else if roll < 0.42 && !topic.is_empty() {
                *rng.pick(topic)
            } else {
                self.word(rng)
            };
            if i == 0 || rng.chance(0.02) {
                push_capitalised(out, word);
            } else {
                out.push_str(word);
            }
            if i + 1 < words && rng.chance(0.07) {
                out.push(if rng.chance(0.85) { ',' } else { ';' });
            }
        }
        out.push(end);
    }

    fn sentence_on(&self, rng: &mut Rng, topic: &[&str], out: &mut String) {
        let end = match rng.between(0, 24) {
            0..=1 => '?',
            2 => '!',
            _ => '.',
        };
        self.sentence_about(rng, topic, end, out);
    }

    pub fn sentence(&self, rng: &mut Rng, out: &mut String) {
        self.sentence_on(rng, &[], out);
    }

    /// The words a text keeps coming back to.
    pub fn topic(&self, rng: &mut Rng) -> Vec<&'static str> {
        (0..rng.between(6, 12))
            .map(|_| self.rare_word(rng))
            .collect()
    }

    pub fn question(&self, rng: &mut Rng) -> String {
        let mut out = String::new();
        let topic = self.topic(rng);
        if rng.chance(0.4) {
            self.sentence_on(rng, &topic, &mut out);
            out.push(' ');
        }
        self.sentence_about(rng, &topic, '?', &mut out);
        out
    }

    /// Sentences until `out` has grown by at least `bytes`.
    fn paragraph(&self, rng: &mut Rng, topic: &[&str], bytes: usize, out: &mut String) {
        let until = out.len() + bytes;
        while out.len() < until {
            if !out.is_empty() && !out.ends_with('\n') {
                out.push(' ');
            }
            self.sentence_on(rng, topic, out);
        }
    }

    fn list(&self, rng: &mut Rng, topic: &[&str], out: &mut String) {
        let numbered = rng.chance(0.5);
        for i in 1..=rng.between(2, 5) {
            if numbered {
                let _ = write!(out, "{i}. ");
            } else {
                out.push_str("- ");
            }
            if rng.chance(0.4) {
                let words = rng.between(1, 2) as usize;
                let _ = write!(out, "**{}**: ", self.title(rng, words));
            }
            self.sentence_on(rng, topic, out);
            out.push('\n');
        }
    }

    fn code(&self, rng: &mut Rng, out: &mut String) {
        let function = self.identifier(rng, 2);
        let (a, b, c) = (
            self.rare_word(rng),
            self.rare_word(rng),
            self.rare_word(rng),
        );
        let limit = rng.between(1, 500);
        let _ = match rng.between(0, 2) {
            0 => write!(
                out,
                "```python\ndef {function}({a}, {b}=None):\n    \"\"\"{doc}\"\"\"\n    \
                 {c} = {a}.get(\"{b}\", {limit})\n    if {c} is None:\n        return []\n    \
                 return [x for x in {a}[\"{c}s\"] if x.{b} > {limit}]\n```\n",
                doc = self.sentence_string(rng),
            ),
            1 => write!(
                out,
                "```ts\nexport async function {function}({a}: string, {b}?: number) {{\n  \
                 const {c} = await fetch(`/api/{a}/${{{a}}}`);\n  if (!{c}.ok) throw new \
                 Error(\"{a} {b} failed\");\n  return ({c}.json() as {{ {b}: number }}).{b} ?? {limit};\n}}\n```\n"
            ),
            _ => write!(
                out,
                "```sql\nSELECT {a}, count(*) AS {b}\nFROM {c}s\nWHERE {a}_id = ${limit} AND \
                 created_at > now() - interval '{days} days'\nGROUP BY {a}\nORDER BY {b} DESC\nLIMIT {limit};\n```\n",
                days = rng.between(1, 90),
            ),
        };
    }

    fn sentence_string(&self, rng: &mut Rng) -> String {
        let mut out = String::new();
        self.sentence(rng, &mut out);
        out
    }

    /// A small JSON object with word keys and mixed values, as a model returns or a tool takes.
    pub fn json_object(&self, rng: &mut Rng, fields: usize) -> serde_json::Value {
        let mut object = serde_json::Map::new();
        for _ in 0..fields {
            let parts = rng.between(1, 2) as usize;
            let key = self.identifier(rng, parts);
            let value = match rng.between(0, 5) {
                0 => serde_json::json!(rng.between(0, 10_000)),
                1 => serde_json::json!(rng.chance(0.5)),
                2 => serde_json::json!((rng.unit() * 1000.0).round() / 100.0),
                3 => serde_json::json!([
                    self.rare_word(rng),
                    self.rare_word(rng),
                    self.rare_word(rng)
                ]),
                _ => {
                    let mut text = String::new();
                    self.sentence(rng, &mut text);
                    serde_json::json!(text)
                }
            };
            object.insert(key, value);
        }
        serde_json::Value::Object(object)
    }

    /// About `bytes` of what a model or a document says: paragraphs, and now and then a heading,
    /// a list, a code block or a JSON snippet.
    pub fn text(&self, rng: &mut Rng, bytes: usize) -> String {
        let topic = self.topic(rng);
        self.text_on(rng, &topic, bytes)
    }

    /// [`Prose::text`] on a given topic: texts of one conversation share theirs.
    pub fn text_on(&self, rng: &mut Rng, topic: &[&str], bytes: usize) -> String {
        let mut out = String::with_capacity(bytes + 200);
        while out.len() < bytes {
            if !out.is_empty() {
                out.push_str(if out.ends_with('\n') { "\n" } else { "\n\n" });
            }
            let left = bytes.saturating_sub(out.len());
            match rng.between(0, 19) {
                0 if left > 300 => {
                    out.push_str("## ");
                    let words = rng.between(2, 4) as usize;
                    out.push_str(&self.title(rng, words));
                    out.push('\n');
                }
                1 | 2 if left > 200 => self.list(rng, topic, &mut out),
                3 if left > 300 => self.code(rng, &mut out),
                4 if left > 200 => {
                    let fields = rng.between(2, 5) as usize;
                    let snippet = serde_json::to_string_pretty(&self.json_object(rng, fields))
                        .unwrap_or_default();
                    let _ = writeln!(out, "```json\n{snippet}\n```");
                }
                _ => {
                    let length = (rng.between(150, 600) as usize).min(left.max(40));
                    self.paragraph(rng, topic, length, &mut out);
                }
            }
        }
        out
    }
}

fn push_capitalised(out: &mut String, word: &str) {
    let mut chars = word.chars();
    if let Some(first) = chars.next() {
        out.extend(first.to_uppercase());
        out.push_str(chars.as_str());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;

    fn gzip_ratio(text: &str) -> f64 {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(text.as_bytes()).unwrap();
        text.len() as f64 / gz.finish().unwrap().len() as f64
    }

    #[test]
    fn the_same_seed_gives_the_same_text() {
        let prose = Prose::new();
        let a = prose.text(&mut Rng::new(7), 2_000);
        let b = prose.text(&mut Rng::new(7), 2_000);
        assert_eq!(a, b);
        assert_ne!(a, prose.text(&mut Rng::new(8), 2_000));
    }

    #[test]
    fn texts_are_about_as_long_as_asked() {
        let prose = Prose::new();
        let mut rng = Rng::new(1);
        for bytes in [50, 500, 1_000, 5_000] {
            let text = prose.text(&mut rng, bytes);
            assert!(
                text.len() >= bytes && text.len() < bytes + 700,
                "{}",
                text.len()
            );
        }
    }

    /// Text deflates like English, about three times in bulk (a kilobyte alone, with no
    /// earlier text to refer to, less than twice): neither like a repeated letter (a hundred
    /// times) nor like noise (not at all).
    #[test]
    fn text_deflates_about_three_times() {
        let prose = Prose::new();
        let mut rng = Rng::new(3);
        let ratios: Vec<f64> = (0..50)
            .map(|_| gzip_ratio(&prose.text(&mut rng, 1_000)))
            .collect();
        let mean = ratios.iter().sum::<f64>() / ratios.len() as f64;
        assert!((1.6..=2.5).contains(&mean), "{mean}");
        let corpus: String = (0..100).map(|_| prose.text(&mut rng, 1_000)).collect();
        let whole = gzip_ratio(&corpus);
        assert!((2.5..=3.5).contains(&whole), "{whole}");
    }
}
