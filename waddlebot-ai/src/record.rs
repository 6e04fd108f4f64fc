//! Record and replay: a provider wrapper that writes every request and its answer to a file
//! (JSON lines), and one that answers from such a file, so module tests and transcripts are
//! the same on every run without a model.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use sha2::Digest;
use waddlebot::{AiError, AiProvider, ChatRequest, ChatResponse, ModelInfo};

/// One recorded exchange.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Entry {
    key: String,
    request: ChatRequest,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    response: Option<ChatResponse>,
    /// The failure, when the provider failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// The request's fingerprint: SHA-256 of its JSON (model, messages, temperature, max tokens).
pub fn request_key(request: &ChatRequest) -> String {
    let json = serde_json::to_vec(request).unwrap_or_default();
    hex::encode(&sha2::Sha256::digest(&json)[..16])
}

fn load(path: &Path) -> Result<HashMap<String, Entry>, AiError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(HashMap::new()),
        Err(err) => {
            return Err(AiError::NotConfigured(format!(
                "cannot read the recording {}: {err}",
                path.display()
            )));
        }
    };
    let mut entries = HashMap::new();
    for (number, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let entry: Entry = serde_json::from_str(line).map_err(|err| {
            AiError::NotConfigured(format!("{} line {}: {err}", path.display(), number + 1))
        })?;
        entries.insert(entry.key.clone(), entry);
    }
    Ok(entries)
}

/// What the recorder does with a request it has seen before.
enum Mode {
    /// Ask the provider and append the exchange to the file.
    Record(Arc<dyn AiProvider>),
    /// Answer from the file only.
    Replay,
}

/// A recording or replaying provider: every request and its answer written to a file (JSON
/// lines), or answered from such a file, so module tests and transcripts are the same on
/// every run without a model.
///
/// ```
/// use std::sync::Arc;
/// use waddlebot::testing::ScriptedAi;
/// use waddlebot::{AiProvider, ChatMessage, ChatRequest};
/// use waddlebot_ai::RecordReplay;
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let file = tempfile::NamedTempFile::new().unwrap();
/// let ask = || ChatRequest::new(vec![ChatMessage::user("What is a penguin?")]);
/// let recorder = RecordReplay::record(Arc::new(ScriptedAi::new(["A bird."])), file.path()).unwrap();
/// recorder.chat(ask()).await.unwrap();
///
/// let replay = RecordReplay::replay(file.path()).unwrap();
/// assert_eq!(replay.chat(ask()).await.unwrap().content, "A bird.");
/// # });
/// ```
pub struct RecordReplay {
    mode: Mode,
    path: PathBuf,
    entries: Mutex<HashMap<String, Entry>>,
}

impl std::fmt::Debug for RecordReplay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordReplay")
            .field("path", &self.path)
            .field("recording", &matches!(self.mode, Mode::Record(_)))
            .finish_non_exhaustive()
    }
}

impl RecordReplay {
    /// Asks `inner` and appends each new exchange to `path` (created if missing); a request
    /// already in the file is answered from it.
    pub fn record(inner: Arc<dyn AiProvider>, path: impl Into<PathBuf>) -> Result<Self, AiError> {
        let path = path.into();
        Ok(Self {
            entries: Mutex::new(load(&path)?),
            mode: Mode::Record(inner),
            path,
        })
    }

    /// Answers from `path` only; a request not in it is an error naming its key.
    pub fn replay(path: impl Into<PathBuf>) -> Result<Self, AiError> {
        let path = path.into();
        if !path.exists() {
            return Err(AiError::NotConfigured(format!(
                "no recording at {}",
                path.display()
            )));
        }
        Ok(Self {
            entries: Mutex::new(load(&path)?),
            mode: Mode::Replay,
            path,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn answer(entry: &Entry) -> Result<ChatResponse, AiError> {
        match (&entry.response, &entry.error) {
            (Some(response), _) => Ok(response.clone()),
            (None, Some(error)) => Err(AiError::Unavailable(error.clone())),
            (None, None) => Err(AiError::Unavailable("an empty recording".to_owned())),
        }
    }

    fn append(&self, entry: &Entry) -> Result<(), AiError> {
        let line = serde_json::to_string(entry)
            .map_err(|err| AiError::Unavailable(format!("cannot record: {err}")))?;
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(|err| {
                AiError::Unavailable(format!("cannot write {}: {err}", self.path.display()))
            })?;
        writeln!(file, "{line}").map_err(|err| {
            AiError::Unavailable(format!("cannot write {}: {err}", self.path.display()))
        })
    }
}

#[async_trait]
impl AiProvider for RecordReplay {
    fn name(&self) -> &str {
        match &self.mode {
            Mode::Record(inner) => inner.name(),
            Mode::Replay => "replay",
        }
    }

    async fn chat(&self, request: ChatRequest) -> Result<ChatResponse, AiError> {
        let key = request_key(&request);
        if let Some(entry) = self.lock().get(&key) {
            return Self::answer(entry);
        }
        let Mode::Record(inner) = &self.mode else {
            return Err(AiError::Unavailable(format!(
                "no recorded answer for request {key} in {}; record it first",
                self.path.display()
            )));
        };
        let result = inner.chat(request.clone()).await;
        let entry = Entry {
            key: key.clone(),
            request,
            response: result.as_ref().ok().cloned(),
            error: result.as_ref().err().map(ToString::to_string),
        };
        self.append(&entry)?;
        self.lock().insert(key, entry);
        result
    }

    async fn models(&self) -> Result<Vec<ModelInfo>, AiError> {
        match &self.mode {
            Mode::Record(inner) => inner.models().await,
            Mode::Replay => Ok(vec![ModelInfo {
                id: "replay".to_owned(),
            }]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use waddlebot::ChatMessage;
    use waddlebot::testing::ScriptedAi;

    fn ask(text: &str) -> ChatRequest {
        ChatRequest::new(vec![ChatMessage::user(text)])
    }

    #[tokio::test]
    async fn failures_are_replayed_too_and_unknown_requests_name_their_key() {
        let file = tempfile::NamedTempFile::new().expect("temp file");
        let flaky = Arc::new(ScriptedAi::new(["fine"]).then_fail("model crashed"));
        let recorder = RecordReplay::record(flaky.clone(), file.path()).expect("opened");
        assert_eq!(
            recorder.chat(ask("one")).await.expect("answered").content,
            "fine"
        );
        assert!(recorder.chat(ask("two")).await.is_err());
        assert_eq!(
            recorder.chat(ask("one")).await.expect("answered").content,
            "fine",
            "a known request is not asked again"
        );
        assert_eq!(flaky.requests().len(), 2);

        let replay = RecordReplay::replay(file.path()).expect("opened");
        assert_eq!(
            replay.chat(ask("one")).await.expect("replayed").content,
            "fine"
        );
        let failure = replay.chat(ask("two")).await.expect_err("replayed failure");
        assert!(failure.to_string().contains("model crashed"), "{failure}");
        let unknown = replay.chat(ask("three")).await.expect_err("not recorded");
        assert!(
            unknown.to_string().contains(&request_key(&ask("three"))),
            "{unknown}"
        );
        assert!(RecordReplay::replay("/no/such/recording.jsonl").is_err());
    }
}
