//! Log output: the original system's AAA line format for `tracing-subscriber`.
//!
//! ```text
//! [2026-11-26T10:00:00.123456Z] INFO waddlebot_server:0.1.0 AUDIT community=1 user=key:ab12 (ops) action=command.create result=success time=-ms target=hello msg="admin change"
//! ```
//!
//! `TYPE` is the event's `category` field (`auth`, `authz`, `audit`, `system`; `system` when
//! absent); `user` is its `actor` or `user` field; `action` its `action` field; `time` its
//! `time_ms` field. Other fields follow as `key=value`, then the message. Use it with
//! `tracing_subscriber::fmt().event_format(AaaFormat)`.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// The AAA line format, naming the module and version it was given (by default `waddlebot`
/// and this build's version).
#[derive(Debug, Clone)]
pub struct AaaFormat {
    module: String,
    version: String,
}

impl Default for AaaFormat {
    fn default() -> Self {
        Self::new("waddlebot", env!("CARGO_PKG_VERSION"))
    }
}

impl AaaFormat {
    /// Lines saying `module:version` (the original's `MODULE_NAME` and `MODULE_VERSION`).
    pub fn new(module: impl Into<String>, version: impl Into<String>) -> Self {
        Self {
            module: module.into(),
            version: version.into(),
        }
    }
}

#[derive(Default)]
struct Fields(BTreeMap<&'static str, String>);

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name(), value.to_owned());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name(), format!("{value:?}"));
    }
}

/// A value as one token: quoted when it has spaces, quotes or `=`.
fn token(value: &str) -> String {
    if value.is_empty() || value.contains([' ', '"', '=', '\n']) {
        format!("{value:?}")
    } else {
        value.to_owned()
    }
}

impl<S, N> FormatEvent<S, N> for AaaFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        let mut fields = Fields::default();
        event.record(&mut fields);
        // The request's span (request id, route) counts as the event's own fields.
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                if let Some(stored) = span
                    .extensions()
                    .get::<tracing_subscriber::fmt::FormattedFields<N>>()
                    && !stored.is_empty()
                {
                    fields.0.entry("span").or_insert_with(|| stored.to_string());
                }
            }
        }
        let mut take = |name: &str| fields.0.remove(name);
        let message = take("message").unwrap_or_default();
        let category = take("category").unwrap_or_else(|| "system".to_owned());
        let community = take("community").unwrap_or_else(|| "-".to_owned());
        let user = take("actor")
            .or_else(|| take("user"))
            .unwrap_or_else(|| "-".to_owned());
        let action = take("action").unwrap_or_else(|| "-".to_owned());
        let result = take("result").unwrap_or_else(|| "-".to_owned());
        let time = take("time_ms").unwrap_or_else(|| "-".to_owned());
        let metadata = event.metadata();
        writer.write_char('[')?;
        SystemTime.format_time(&mut writer)?;
        write!(
            writer,
            "] {} {}:{} {} community={} user={} action={} result={} time={}ms",
            metadata.level(),
            self.module,
            self.version,
            category.to_ascii_uppercase(),
            token(&community),
            token(&user),
            token(&action),
            token(&result),
            token(&time),
        )?;
        let mut rest = String::new();
        for (key, value) in &fields.0 {
            let _ = write!(rest, " {key}={}", token(value));
        }
        writer.write_str(&rest)?;
        if !message.is_empty() {
            write!(writer, " msg={}", token(&message))?;
        }
        writeln!(writer)
    }
}

/// Why logging could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LogSetupError {
    /// `LOG_DIR` cannot be created or written.
    #[error("cannot write logs to {dir}: {source}")]
    Dir {
        /// The directory.
        dir: std::path::PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The syslog server's address does not resolve, or no UDP socket could be opened.
    #[error("cannot send logs to syslog at {target}: {reason}")]
    Syslog {
        /// `host:port`.
        target: String,
        /// Why.
        reason: String,
    },
    /// The filter is not one `tracing` reads.
    #[error("invalid LOG_LEVEL: {0}")]
    Filter(String),
    /// A global subscriber was set already.
    #[error("logging was set up already")]
    AlreadySet,
}

/// Sets the process's logging up from the configuration: stderr (colours only for a person at
/// a terminal) in `LOG_FORMAT`, plus, when configured, `<LOG_DIR>/<MODULE_NAME>.log` rotated
/// at `LOG_MAX_BYTES` with `LOG_BACKUP_COUNT` kept (same format, no colours), and RFC 5424
/// syslog over UDP (AAA lines, the event's level as severity).
pub fn init(config: &crate::Config) -> Result<(), LogSetupError> {
    use tracing_subscriber::Layer as _;
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;

    let filter = tracing_subscriber::EnvFilter::try_new(&config.log_level)
        .map_err(|err| LogSetupError::Filter(err.to_string()))?;
    let logs = &config.logs;
    let aaa = AaaFormat::new(&logs.module_name, &logs.module_version);
    let mut layers = vec![format_layer(
        config.log_format,
        &aaa,
        std::io::stderr,
        std::io::IsTerminal::is_terminal(&std::io::stderr()),
    )];
    if let Some(dir) = &logs.dir {
        layers.push(format_layer(
            config.log_format,
            &aaa,
            rotating_file(dir, &logs.module_name, logs.max_bytes, logs.files_kept)?,
            false,
        ));
    }
    if let Some(target) = &logs.syslog {
        layers.push(format_layer(
            crate::LogFormat::Aaa,
            &aaa,
            SyslogWriter::connect(target, &logs.module_name)?,
            false,
        ));
    }
    tracing_subscriber::registry()
        .with(layers.with_filter(filter))
        .try_init()
        .map_err(|_| LogSetupError::AlreadySet)
}

type BoxedLayer = Box<dyn tracing_subscriber::Layer<tracing_subscriber::Registry> + Send + Sync>;

/// A formatting layer writing to `writer` in `format`.
fn format_layer<W>(format: crate::LogFormat, aaa: &AaaFormat, writer: W, ansi: bool) -> BoxedLayer
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(writer)
        .with_ansi(ansi);
    match format {
        crate::LogFormat::Text => Box::new(layer),
        crate::LogFormat::Json => Box::new(layer.json()),
        crate::LogFormat::Aaa => Box::new(layer.event_format(aaa.clone())),
    }
}

/// `<dir>/<module>.log`, moved to `.1` … `.<kept>` when it passes `max_bytes` (a line is never
/// split between two files).
fn rotating_file(
    dir: &std::path::Path,
    module: &str,
    max_bytes: usize,
    kept: usize,
) -> Result<
    std::sync::Mutex<file_rotate::FileRotate<file_rotate::suffix::AppendCount>>,
    LogSetupError,
> {
    let failed = |source| LogSetupError::Dir {
        dir: dir.to_owned(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(failed)?;
    let path = dir.join(format!("{module}.log"));
    // Opened here first, so a directory that cannot be written is reported at start.
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(failed)?;
    Ok(std::sync::Mutex::new(file_rotate::FileRotate::new(
        path,
        file_rotate::suffix::AppendCount::new(kept),
        file_rotate::ContentLimit::BytesSurpassed(max_bytes),
        file_rotate::compression::Compression::None,
        None,
    )))
}

type Syslog = syslog::Logger<syslog::LoggerBackend, syslog::Formatter5424>;

/// Sends each log line as one RFC 5424 datagram, at the severity of the event's level.
struct SyslogWriter(std::sync::Arc<std::sync::Mutex<Syslog>>);

impl SyslogWriter {
    fn connect(target: &crate::SyslogSettings, module: &str) -> Result<Self, LogSetupError> {
        let address = format!("{}:{}", target.host, target.port);
        let failed = |reason: String| LogSetupError::Syslog {
            target: address.clone(),
            reason,
        };
        let facility = target
            .facility
            .parse()
            .map_err(|()| failed(format!("unknown facility {}", target.facility)))?;
        let formatter = syslog::Formatter5424 {
            facility,
            hostname: hostname(),
            process: module.to_owned(),
            pid: std::process::id(),
        };
        let remote = std::net::ToSocketAddrs::to_socket_addrs(&address)
            .map_err(|err| failed(err.to_string()))?
            .next()
            .ok_or_else(|| failed("the name has no address".to_owned()))?;
        let local = if remote.is_ipv4() {
            "0.0.0.0:0"
        } else {
            "[::]:0"
        };
        let logger =
            syslog::udp(formatter, local, remote).map_err(|err| failed(err.to_string()))?;
        Ok(Self(std::sync::Arc::new(std::sync::Mutex::new(logger))))
    }
}

/// This machine's name for syslog's HOSTNAME field.
fn hostname() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
}

/// One event's line, sent when the formatter is done with it.
struct SyslogLine {
    logger: std::sync::Arc<std::sync::Mutex<Syslog>>,
    level: tracing::Level,
    line: Vec<u8>,
}

impl std::io::Write for SyslogLine {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.line.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for SyslogLine {
    fn drop(&mut self) {
        let text = String::from_utf8_lossy(&self.line);
        let text = text.trim_end();
        if text.is_empty() {
            return;
        }
        let message = (0, std::collections::BTreeMap::new(), text);
        let mut logger = self.logger.lock().unwrap_or_else(|p| p.into_inner());
        // A log line that cannot be sent is dropped: logging must never stop the bot.
        let _ = match self.level {
            tracing::Level::ERROR => logger.err(message),
            tracing::Level::WARN => logger.warning(message),
            tracing::Level::INFO => logger.info(message),
            _ => logger.debug(message),
        };
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for SyslogWriter {
    type Writer = SyslogLine;

    fn make_writer(&'a self) -> SyslogLine {
        self.make_writer_for_level(tracing::Level::INFO)
    }

    fn make_writer_for(&'a self, meta: &tracing::Metadata<'_>) -> SyslogLine {
        self.make_writer_for_level(*meta.level())
    }
}

impl SyslogWriter {
    fn make_writer_for_level(&self, level: tracing::Level) -> SyslogLine {
        SyslogLine {
            logger: std::sync::Arc::clone(&self.0),
            level,
            line: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("lock").extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn the_log_file_is_rotated_by_size_and_old_files_dropped() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = rotating_file(dir.path(), "router", 1024, 2).expect("writable");
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(file)
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            for n in 0..200 {
                tracing::info!(n, "a line long enough to fill a kilobyte in a dozen or so");
            }
        });
        let mut names: Vec<String> = std::fs::read_dir(dir.path())
            .expect("listed")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["router.log", "router.log.1", "router.log.2"]);
        for name in &names {
            let text = std::fs::read_to_string(dir.path().join(name)).expect("readable");
            assert!(text.len() < 1024 + 200, "{name}: {} bytes", text.len());
            assert!(text.ends_with('\n'), "{name}: whole lines only");
        }
        let newest = std::fs::read_to_string(dir.path().join("router.log")).expect("readable");
        assert!(newest.contains("n=199"), "{newest}");
        assert!(!newest.contains('\u{1b}'), "no colour codes in a file");
    }

    #[test]
    fn syslog_gets_rfc_5424_datagrams_at_the_events_level() {
        let listener = std::net::UdpSocket::bind("127.0.0.1:0").expect("bound");
        listener
            .set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .expect("timeout");
        let target = crate::SyslogSettings {
            host: "127.0.0.1".to_owned(),
            port: listener.local_addr().expect("address").port(),
            facility: "local3".to_owned(),
        };
        let writer = SyslogWriter::connect(&target, "router").expect("connected");
        let aaa = AaaFormat::new("router", "2.0.1");
        let layer = format_layer(crate::LogFormat::Aaa, &aaa, writer, false);
        let subscriber = tracing_subscriber::layer::SubscriberExt::with(
            tracing_subscriber::Registry::default(),
            layer,
        );
        tracing::subscriber::with_default(subscriber, || {
            tracing::warn!(category = "auth", action = "login", "refused");
        });
        let mut buf = [0u8; 2048];
        let n = listener.recv(&mut buf).expect("a datagram");
        let datagram = String::from_utf8_lossy(&buf[..n]).into_owned();
        // PRI = facility local3 (19) * 8 + severity warning (4); version 1.
        assert!(datagram.starts_with("<156>1 20"), "{datagram}");
        let fields: Vec<&str> = datagram.splitn(8, ' ').collect();
        assert_eq!(fields[3], "router", "APP-NAME: {datagram}");
        assert_eq!(
            fields[4],
            std::process::id().to_string(),
            "PROCID: {datagram}"
        );
        assert!(
            fields[7].contains("WARN router:2.0.1 AUTH") && fields[7].contains("action=login"),
            "the AAA line: {datagram}"
        );
    }

    #[test]
    fn an_audit_event_becomes_one_aaa_line() {
        let buffer = Buffer::default();
        let out = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .event_format(AaaFormat::new("router", "2.0.1"))
            .with_writer(move || out.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(
                category = "audit",
                actor = "key:ab12 (ops)",
                community = 7,
                action = "command.create",
                result = "success",
                time_ms = 3,
                target = "hello",
                "admin change"
            );
            tracing::warn!("plain system line");
        });
        let text = String::from_utf8(buffer.0.lock().expect("lock").clone()).expect("utf-8");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        let (stamp, rest) = lines[0].split_once("] ").expect("timestamp");
        assert!(stamp.starts_with("[20"), "{stamp}");
        assert_eq!(
            rest,
            "INFO router:2.0.1 AUDIT community=7 user=\"key:ab12 (ops)\" action=command.create result=success time=3ms target=hello msg=\"admin change\""
        );
        let plain = "WARN router:2.0.1 SYSTEM community=- user=- action=- result=- time=-ms msg=\"plain system line\"";
        assert!(lines[1].ends_with(plain), "{}", lines[1]);
    }
}
