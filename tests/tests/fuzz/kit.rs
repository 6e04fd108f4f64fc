//! What every fuzz target shares: turning bolero's bytes into inputs, mutating the seed corpus,
//! and a watchdog that turns a hang or a runaway allocation into a failure naming the input.
//!
//! bolero's test engine (plain `cargo test`) replays the corpus files as they are and then feeds
//! random bytes; it does not mutate the corpus the way libFuzzer does. Random bytes alone almost
//! never make valid JSON, so every target runs each input twice: once as the bytes themselves
//! (the corpus replayed verbatim, random garbage for the error paths) and once as a seed from the
//! corpus changed by mutations that the same bytes choose (valid structure with hostile values,
//! which reaches the code behind the first `serde_json::from_slice`).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};

/// Random inputs per target in a plain `cargo test`, on top of the corpus.
/// `BOLERO_RANDOM_ITERATIONS` (read by bolero) overrides it for a longer run.
pub(crate) const ITERATIONS: usize = 5_000;
/// The same for targets that go through the whole HTTP application per input.
pub(crate) const HTTP_ITERATIONS: usize = 1_500;

/// One input taking longer than this is a hang (debug build, two cores shared by the tests).
const HANG: Duration = Duration::from_secs(20);
/// The test process growing past this is a runaway allocation (inputs are at most a few KiB).
const MAX_RSS_BYTES: u64 = 4 << 30;
/// Mutated payloads are cut here, so a duplicating mutation cannot grow without bound.
const MAX_MUTATED_BYTES: usize = 64 << 10;

/// A fuzz target's harness: its seeds and its watchdog.
pub(crate) struct Target {
    name: &'static str,
    seeds: Vec<Vec<u8>>,
    watch: Arc<Watch>,
    /// Inputs run, reported when the target ends (`--nocapture` shows it).
    runs: AtomicU64,
}

struct Watch {
    /// Milliseconds after `start` when the current input began; 0 when idle.
    busy_since_ms: AtomicU64,
    input: Mutex<Vec<u8>>,
    start: Instant,
    done: AtomicBool,
}

impl Target {
    /// The target `name`, seeded from `tests/fuzz/__fuzz__/<name>/corpus` (where bolero's test
    /// engine also reads it, because the targets live in `tests/fuzz/`).
    pub(crate) fn new(name: &'static str) -> Self {
        let dir = corpus_dir(name);
        let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap_or_else(|err| panic!("the corpus of {name} at {}: {err}", dir.display()))
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .filter(|path| path.is_file())
            .collect();
        paths.sort();
        let seeds: Vec<Vec<u8>> = paths
            .iter()
            .map(|path| std::fs::read(path).expect("a readable seed"))
            .collect();
        assert!(
            !seeds.is_empty(),
            "{name} has no seeds in {}",
            dir.display()
        );
        let watch = Arc::new(Watch {
            busy_since_ms: AtomicU64::new(0),
            input: Mutex::new(Vec::new()),
            start: Instant::now(),
            done: AtomicBool::new(false),
        });
        let watched = Arc::clone(&watch);
        std::thread::spawn(move || watchdog(name, &watched));
        Self {
            name,
            seeds,
            watch,
            runs: AtomicU64::new(0),
        }
    }

    /// Runs `test` on `input` as it is, then on a seed mutated as `input` chooses, with `mutate`
    /// (one of [`mutate_json`], [`mutate_text`], [`mutate_form`] or a target's own).
    pub(crate) fn run(
        &self,
        input: &[u8],
        mutate: impl Fn(&[u8], &mut Entropy<'_>) -> Vec<u8>,
        mut test: impl FnMut(&[u8]),
    ) {
        self.one(input, &mut test);
        let mut entropy = Entropy::new(input);
        let seed = &self.seeds[entropy.below(self.seeds.len())];
        let mut mutated = mutate(seed, &mut entropy);
        mutated.truncate(MAX_MUTATED_BYTES);
        self.one(&mutated, &mut test);
    }

    fn one(&self, input: &[u8], test: &mut impl FnMut(&[u8])) {
        input.clone_into(&mut self.watch.input.lock().unwrap_or_else(|p| p.into_inner()));
        let now = u64::try_from(self.watch.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.watch.busy_since_ms.store(now.max(1), Ordering::SeqCst);
        test(input);
        self.watch.busy_since_ms.store(0, Ordering::SeqCst);
        self.runs.fetch_add(1, Ordering::Relaxed);
    }

    /// The target's name (its corpus folder).
    pub(crate) fn name(&self) -> &'static str {
        self.name
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        self.watch.done.store(true, Ordering::SeqCst);
        eprintln!(
            "fuzz target {}: {} inputs in {:?}",
            self.name,
            self.runs.load(Ordering::Relaxed),
            self.watch.start.elapsed()
        );
    }
}

pub(crate) fn corpus_dir(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fuzz/__fuzz__")
        .join(name)
        .join("corpus")
}

/// Checks the running input four times a second. A panic would only end this thread, and a
/// hung test thread never returns to bolero, so the watchdog ends the whole process instead,
/// after printing the input so it can be put in the corpus.
fn watchdog(name: &'static str, watch: &Watch) {
    while !watch.done.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(250));
        let since = watch.busy_since_ms.load(Ordering::SeqCst);
        let now = u64::try_from(watch.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        let hung = since != 0
            && now.saturating_sub(since) > u64::try_from(HANG.as_millis()).unwrap_or(u64::MAX);
        let rss = resident_bytes();
        if hung || rss > MAX_RSS_BYTES {
            let input = watch
                .input
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone();
            eprintln!(
                "fuzz target {name}: {} on input ({} bytes) {:?}",
                if hung {
                    format!("no answer after {HANG:?}")
                } else {
                    format!("the process holds {rss} bytes")
                },
                input.len(),
                String::from_utf8_lossy(&input),
            );
            std::process::exit(101);
        }
    }
}

/// The process's resident memory (Linux; 0 elsewhere).
fn resident_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|statm| statm.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4096)
}

/// Choices read from bolero's bytes: the same input always makes the same choices, and an
/// exhausted input chooses 0 from then on.
pub(crate) struct Entropy<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Entropy<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, at: 0 }
    }

    pub(crate) fn byte(&mut self) -> u8 {
        let byte = self.bytes.get(self.at).copied().unwrap_or(0);
        self.at += 1;
        byte
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub(crate) fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            return 0;
        }
        usize::from(u16::from_le_bytes([self.byte(), self.byte()])) % n
    }

    pub(crate) fn pick<'s, T>(&mut self, items: &'s [T]) -> &'s T {
        &items[self.below(items.len())]
    }

    /// Up to `max` bytes of the input, as text.
    pub(crate) fn text(&mut self, max: usize) -> String {
        let len = self.below(max + 1);
        let start = self.at.min(self.bytes.len());
        let end = (start + len).min(self.bytes.len());
        self.at += len;
        String::from_utf8_lossy(&self.bytes[start..end]).into_owned()
    }
}

/// Values that break careless code: empty and blank text, limits' neighbours, control and
/// direction characters, numbers past every integer type, and other types where text belongs.
pub(crate) fn hostile_value(entropy: &mut Entropy<'_>) -> Value {
    match entropy.below(24) {
        0 => Value::Null,
        1 => json!(true),
        2 => json!(0),
        3 => json!(-1),
        4 => json!(u64::MAX),
        5 => json!(i64::MIN),
        6 => json!(1e300),
        7 => json!(0.5),
        8 => json!(""),
        9 => json!("   "),
        10 => json!("\u{0}\u{1}\r\n\t"),
        11 => json!("\u{202e}🦆 e\u{301}"),
        12 => json!("18446744073709551616"),
        13 => json!("-9223372036854775809"),
        // Just past the router API's 5,000-character message and 255-character id limits.
        14 => json!("x".repeat(5001)),
        15 => json!("é".repeat(256)),
        16 => json!([]),
        17 => json!({}),
        18 => json!(["a", 1, null]),
        19 => json!({"a": {"b": [1, {"c": "d"}]}}),
        20 => json!("{{}}{"),
        21 => json!("%00%zz\\u0000"),
        22 => Value::String(entropy.text(64)),
        _ => json!(u32::MAX),
    }
}

/// How many mutations to apply: mostly one, since the wire formats are strict (unknown keys and
/// wrong types are refused) and each more mutation makes a refusal likelier; now and then up to
/// four.
fn mutations(entropy: &mut Entropy<'_>) -> usize {
    if entropy.below(4) == 0 {
        2 + entropy.below(3)
    } else {
        1
    }
}

/// Mutates a JSON seed: text changed in place (keeping its type, so the input still gets past
/// the shape checks), a value replaced by a hostile one or by a word of the target's `words`, a
/// key removed, a key of `words` added, a value doubled. A seed that is not JSON is mutated as
/// text.
pub(crate) fn mutate_json(
    words: &'static [&'static str],
) -> impl Fn(&[u8], &mut Entropy<'_>) -> Vec<u8> {
    move |seed, entropy| {
        let Ok(mut value) = serde_json::from_slice::<Value>(seed) else {
            return mutate_text(words)(seed, entropy);
        };
        for _ in 0..mutations(entropy) {
            mutate_value(&mut value, words, entropy);
        }
        serde_json::to_vec(&value).expect("a Value always serializes")
    }
}

fn mutate_value(root: &mut Value, words: &'static [&'static str], entropy: &mut Entropy<'_>) {
    let mut pointers = Vec::new();
    collect_pointers(root, String::new(), &mut pointers);
    let pointer = entropy.pick(&pointers).clone();
    let Some(node) = root.pointer_mut(&pointer) else {
        return;
    };
    match entropy.below(8) {
        0..=2 => {
            if let Value::String(text) = node {
                *text = String::from_utf8_lossy(&mutate_text(words)(text.as_bytes(), entropy))
                    .into_owned();
            } else {
                *node = hostile_value(entropy);
            }
        }
        3 => *node = hostile_value(entropy),
        4 => *node = Value::from(*entropy.pick(words)),
        5 => match node {
            Value::Object(map) if !map.is_empty() => {
                let key = map.keys().nth(entropy.below(map.len())).cloned();
                if let Some(key) = key {
                    map.remove(&key);
                }
            }
            Value::Array(items) if !items.is_empty() => {
                items.remove(entropy.below(items.len()));
            }
            _ => *node = Value::Null,
        },
        6 => match node {
            Value::Object(map) => {
                map.insert((*entropy.pick(words)).to_owned(), hostile_value(entropy));
            }
            Value::Array(items) => items.push(hostile_value(entropy)),
            _ => *node = Value::Object(Map::new()),
        },
        _ => {
            // The same value twice as deep, which grows arrays and nesting.
            let copy = node.clone();
            *node = json!([copy.clone(), copy]);
        }
    }
}

fn collect_pointers(value: &Value, here: String, out: &mut Vec<String>) {
    if out.len() > 512 {
        return;
    }
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                let key = key.replace('~', "~0").replace('/', "~1");
                collect_pointers(child, format!("{here}/{key}"), out);
            }
        }
        Value::Array(items) => {
            for (index, child) in items.iter().enumerate() {
                collect_pointers(child, format!("{here}/{index}"), out);
            }
        }
        _ => {}
    }
    out.push(here);
}

/// Mutates text 1 to 6 times: a word of `words` inserted, a range deleted, doubled or replaced by
/// raw input bytes. Positions are character boundaries, so valid UTF-8 stays valid.
pub(crate) fn mutate_text(
    words: &'static [&'static str],
) -> impl Fn(&[u8], &mut Entropy<'_>) -> Vec<u8> {
    move |seed, entropy| {
        let mut text = String::from_utf8_lossy(seed).into_owned();
        for _ in 0..=entropy.below(6) {
            let bounds: Vec<usize> = text
                .char_indices()
                .map(|(i, _)| i)
                .chain([text.len()])
                .collect();
            let a = *entropy.pick(&bounds);
            let b = *entropy.pick(&bounds);
            let (from, to) = (a.min(b), a.max(b));
            match entropy.below(5) {
                0 | 1 => text.insert_str(a, entropy.pick::<&str>(words)),
                2 => text.replace_range(from..to, ""),
                3 => {
                    let piece = text[from..to].to_owned();
                    text.insert_str(to, &piece);
                }
                _ => {
                    let raw = entropy.text(8);
                    text.replace_range(from..to, &raw);
                }
            }
            if text.len() > MAX_MUTATED_BYTES {
                break;
            }
        }
        text.into_bytes()
    }
}

/// Mutates an `application/x-www-form-urlencoded` seed: pairs replaced, removed, doubled or
/// added with `words` as names; a value that is JSON (Slack's `payload`) is mutated as JSON.
pub(crate) fn mutate_form(
    words: &'static [&'static str],
) -> impl Fn(&[u8], &mut Entropy<'_>) -> Vec<u8> {
    move |seed, entropy| {
        let mut pairs: Vec<(String, String)> =
            url::form_urlencoded::parse(seed).into_owned().collect();
        for _ in 0..mutations(entropy) {
            let at = entropy.below(pairs.len());
            match entropy.below(6) {
                0 if !pairs.is_empty() => {
                    pairs.remove(at);
                }
                1 if !pairs.is_empty() => {
                    let pair = pairs[at].clone();
                    pairs.push(pair);
                }
                2 | 3 if !pairs.is_empty() => {
                    let value = &mut pairs[at].1;
                    *value = if value.starts_with('{') {
                        String::from_utf8_lossy(&mutate_json(words)(value.as_bytes(), entropy))
                            .into_owned()
                    } else {
                        String::from_utf8_lossy(&mutate_text(words)(value.as_bytes(), entropy))
                            .into_owned()
                    };
                }
                4 if !pairs.is_empty() => {
                    pairs[at].1 = match hostile_value(entropy) {
                        Value::String(text) => text,
                        other => other.to_string(),
                    };
                }
                _ => pairs.push(((*entropy.pick(words)).to_owned(), entropy.text(24))),
            }
        }
        let mut form = url::form_urlencoded::Serializer::new(String::new());
        form.extend_pairs(&pairs);
        let mut body = form.finish().into_bytes();
        // Now and then a broken encoding the serializer would never write.
        if entropy.below(8) == 0 {
            let broken: &[&[u8]] = &[b"&%zz=%", b"&=", b"&&", b"%C3%28"];
            body.extend_from_slice(entropy.pick::<&[u8]>(broken));
        }
        body
    }
}

/// Splits a `<line>\n<body>` input (the HTTP targets' seeds: a request line or header, then a
/// body) at the first newline.
pub(crate) fn head_and_body(input: &[u8]) -> (String, &[u8]) {
    match input.iter().position(|&b| b == b'\n') {
        Some(at) => (
            String::from_utf8_lossy(&input[..at]).trim().to_owned(),
            &input[at + 1..],
        ),
        None => (String::new(), input),
    }
}

/// Mutates the body of a `<line>\n<body>` seed with `body`, keeping the line (one time in four
/// mutating it as text too).
pub(crate) fn mutate_body(
    words: &'static [&'static str],
    body: impl Fn(&[u8], &mut Entropy<'_>) -> Vec<u8>,
) -> impl Fn(&[u8], &mut Entropy<'_>) -> Vec<u8> {
    move |seed, entropy| {
        let (head, rest) = head_and_body(seed);
        let head = if entropy.below(4) == 0 {
            String::from_utf8_lossy(&mutate_text(words)(head.as_bytes(), entropy)).replace('\n', "")
        } else {
            head
        };
        let mut out = head.into_bytes();
        out.push(b'\n');
        out.extend(body(rest, entropy));
        out
    }
}

/// A current-thread runtime for a target's async parts.
pub(crate) fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
}
