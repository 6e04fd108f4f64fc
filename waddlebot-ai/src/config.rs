//! Choosing and configuring providers from the environment, with the original's names:
//! `AI_PROVIDER` = `ollama`, `waddleai`, `openai`, or a comma-separated chain of them.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use waddlebot::AiProvider;

use crate::FallbackChain;
use crate::breaker::{BreakerSettings, CircuitBreaker};
use crate::http::HttpSettings;
use crate::ollama::{Ollama, OllamaConfig};
use crate::openai::{OpenAi, OpenAiConfig};

/// A setting that cannot be used; names the variable, what it was and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {key} = '{value}': {reason}")]
pub struct AiConfigError {
    /// The variable.
    pub key: String,
    /// Its value (secrets shown as `***`).
    pub value: String,
    /// What is wrong, and what would be right.
    pub reason: String,
}

fn invalid(key: &str, value: &str, reason: impl Into<String>) -> AiConfigError {
    AiConfigError {
        key: key.to_owned(),
        value: value.to_owned(),
        reason: reason.into(),
    }
}

/// One configured provider.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ProviderSettings {
    /// Ollama, directly.
    Ollama(OllamaConfig),
    /// An OpenAI-compatible server (WaddleAI, OpenAI).
    OpenAi(OpenAiConfig),
}

/// The providers to use, in order, and their breaker.
#[derive(Debug, Clone, PartialEq)]
pub struct AiSettings {
    /// First preferred.
    pub providers: Vec<ProviderSettings>,
    /// The circuit breaker around each.
    pub breaker: BreakerSettings,
}

/// What to set to turn AI on, for refusals when it is off.
pub const HOW_TO_CONFIGURE: &str = "set AI_PROVIDER to ollama (with OLLAMA_HOST), waddleai (with WADDLEAI_BASE_URL and WADDLEAI_API_KEY) or openai (with OPENAI_API_KEY)";

impl AiSettings {
    /// Reads the environment (`get` looks a variable up; empty counts as unset). `None` when
    /// `AI_PROVIDER` is unset: AI is off.
    pub fn from_env(get: impl Fn(&str) -> Option<String>) -> Result<Option<Self>, AiConfigError> {
        let get = |key: &str| get(key).filter(|v| !v.trim().is_empty());
        let Some(chain) = get("AI_PROVIDER") else {
            return Ok(None);
        };
        let temperature = match get("AI_TEMPERATURE") {
            Some(v) => parse_temperature("AI_TEMPERATURE", &v)?,
            None => 0.7,
        };
        let max_tokens = match get("AI_MAX_TOKENS") {
            Some(v) => parse_max_tokens("AI_MAX_TOKENS", &v)?,
            None => 500,
        };
        let mut providers = Vec::new();
        for name in chain.split(',').map(|n| n.trim().to_ascii_lowercase()) {
            let provider = match name.as_str() {
                "ollama" => ProviderSettings::Ollama(ollama(&get, temperature, max_tokens)?),
                "waddleai" => ProviderSettings::OpenAi(waddleai(&get, temperature, max_tokens)?),
                "openai" => ProviderSettings::OpenAi(openai(&get, temperature, max_tokens)?),
                other => {
                    return Err(invalid(
                        "AI_PROVIDER",
                        &chain,
                        format!(
                            "unknown provider '{other}' (expected ollama, waddleai or openai, or a comma-separated chain)"
                        ),
                    ));
                }
            };
            if providers.contains(&provider) {
                return Err(invalid(
                    "AI_PROVIDER",
                    &chain,
                    format!("{name} is named twice"),
                ));
            }
            providers.push(provider);
        }
        Ok(Some(Self {
            providers,
            breaker: BreakerSettings::default(),
        }))
    }

    /// The provider these settings describe: each behind a circuit breaker, several in a
    /// fallback chain.
    pub fn build(&self) -> Result<Arc<dyn AiProvider>, waddlebot::AiError> {
        let mut built: Vec<Arc<dyn AiProvider>> = Vec::new();
        for provider in &self.providers {
            built.push(match provider {
                ProviderSettings::Ollama(config) => Arc::new(CircuitBreaker::new(
                    Ollama::new(config.clone())?,
                    self.breaker,
                )),
                ProviderSettings::OpenAi(config) => Arc::new(CircuitBreaker::new(
                    OpenAi::new(config.clone())?,
                    self.breaker,
                )),
            });
        }
        if built.len() == 1 {
            return Ok(built.remove(0));
        }
        FallbackChain::new(built)
            .map(|chain| Arc::new(chain) as Arc<dyn AiProvider>)
            .ok_or_else(|| waddlebot::AiError::NotConfigured(HOW_TO_CONFIGURE.to_owned()))
    }
}

/// Every variable [`AiSettings::from_env`] reads.
pub const SETTING_NAMES: &[&str] = &[
    "AI_PROVIDER",
    "AI_TEMPERATURE",
    "AI_MAX_TOKENS",
    "OLLAMA_HOST",
    "OLLAMA_PORT",
    "OLLAMA_USE_TLS",
    "OLLAMA_CERT_PATH",
    "OLLAMA_VERIFY_SSL",
    "OLLAMA_MODEL",
    "OLLAMA_TEMPERATURE",
    "OLLAMA_MAX_TOKENS",
    "OLLAMA_TIMEOUT",
    "WADDLEAI_BASE_URL",
    "WADDLEAI_API_KEY",
    "WADDLEAI_MODEL",
    "WADDLEAI_TEMPERATURE",
    "WADDLEAI_MAX_TOKENS",
    "WADDLEAI_TIMEOUT",
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "OPENAI_MODEL",
    "OPENAI_TIMEOUT",
];

impl AiSettings {
    /// The settings without their secrets, for an admin to read back: each provider's address,
    /// model, sampling, timeout and whether a key or CA is set.
    pub fn describe(&self) -> serde_json::Value {
        let providers: Vec<serde_json::Value> = self
            .providers
            .iter()
            .map(|provider| match provider {
                ProviderSettings::Ollama(c) => serde_json::json!({
                    "provider": "ollama", "base_url": c.base_url, "model": c.model,
                    "temperature": as_written(c.temperature), "max_tokens": c.max_tokens,
                    "timeout_secs": c.http.timeout.as_secs(), "extra_ca": c.http.extra_ca.is_some(),
                    "verify_tls": c.http.verify_tls,
                }),
                ProviderSettings::OpenAi(c) => serde_json::json!({
                    "provider": c.name, "base_url": c.base_url, "model": c.model,
                    "temperature": as_written(c.temperature), "max_tokens": c.max_tokens,
                    "timeout_secs": c.http.timeout.as_secs(), "api_key_set": c.api_key.is_some(),
                }),
            })
            .collect();
        serde_json::json!({ "providers": providers })
    }
}

/// An `f32` setting as the number it was written as: JSON numbers are `f64`, and widening
/// `0.7f32` gives `0.699999988079071`; its shortest decimal form, read as `f64`, is `0.7`.
fn as_written(value: f32) -> f64 {
    value.to_string().parse().unwrap_or(f64::from(value))
}

fn parse_temperature(key: &str, value: &str) -> Result<f32, AiConfigError> {
    match value.trim().parse::<f32>() {
        Ok(t) if (0.0..=2.0).contains(&t) => Ok(t),
        _ => Err(invalid(key, value, "a number from 0 to 2")),
    }
}

fn parse_max_tokens(key: &str, value: &str) -> Result<u32, AiConfigError> {
    match value.trim().parse::<u32>() {
        Ok(n) if (1..=4096).contains(&n) => Ok(n),
        _ => Err(invalid(key, value, "a whole number from 1 to 4096")),
    }
}

fn parse_flag(key: &str, value: &str) -> Result<bool, AiConfigError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(invalid(key, value, "true or false")),
    }
}

fn parse_timeout(key: &str, value: &str) -> Result<Duration, AiConfigError> {
    match value.trim().parse::<u64>() {
        Ok(secs) if (1..=600).contains(&secs) => Ok(Duration::from_secs(secs)),
        _ => Err(invalid(key, value, "seconds, from 1 to 600")),
    }
}

fn parse_url(key: &str, value: &str) -> Result<String, AiConfigError> {
    let value = value.trim();
    if value.starts_with("http://") || value.starts_with("https://") {
        Ok(value.trim_end_matches('/').to_owned())
    } else {
        Err(invalid(key, value, "an http:// or https:// URL"))
    }
}

/// The provider-specific value, else the shared one.
fn either<T>(
    get: &impl Fn(&str) -> Option<String>,
    key: &str,
    parse: impl Fn(&str, &str) -> Result<T, AiConfigError>,
    shared: T,
) -> Result<T, AiConfigError> {
    get(key).map_or(Ok(shared), |v| parse(key, &v))
}

fn ollama(
    get: &impl Fn(&str) -> Option<String>,
    temperature: f32,
    max_tokens: u32,
) -> Result<OllamaConfig, AiConfigError> {
    let tls = either(get, "OLLAMA_USE_TLS", parse_flag, false)?;
    let host = get("OLLAMA_HOST").unwrap_or_else(|| "localhost".to_owned());
    let port = match get("OLLAMA_PORT") {
        Some(v) => v
            .trim()
            .parse::<u16>()
            .map_err(|_| invalid("OLLAMA_PORT", &v, "a port number"))?,
        None => 11434,
    };
    // OLLAMA_HOST may be a bare host (the original's form) or a whole URL.
    let base_url = if host.contains("://") {
        parse_url("OLLAMA_HOST", &host)?
    } else {
        let scheme = if tls { "https" } else { "http" };
        format!("{scheme}://{}:{port}", host.trim())
    };
    let extra_ca = match get("OLLAMA_CERT_PATH") {
        Some(path) => {
            let path = PathBuf::from(path.trim());
            if !path.is_file() {
                return Err(invalid(
                    "OLLAMA_CERT_PATH",
                    &path.display().to_string(),
                    "no such file (a PEM CA certificate)",
                ));
            }
            Some(path)
        }
        None => None,
    };
    Ok(OllamaConfig {
        base_url,
        model: get("OLLAMA_MODEL").unwrap_or_else(|| "llama3.2".to_owned()),
        temperature: either(get, "OLLAMA_TEMPERATURE", parse_temperature, temperature)?,
        max_tokens: either(get, "OLLAMA_MAX_TOKENS", parse_max_tokens, max_tokens)?,
        http: HttpSettings {
            timeout: either(
                get,
                "OLLAMA_TIMEOUT",
                parse_timeout,
                Duration::from_secs(30),
            )?,
            extra_ca,
            verify_tls: either(get, "OLLAMA_VERIFY_SSL", parse_flag, true)?,
        },
    })
}

fn waddleai(
    get: &impl Fn(&str) -> Option<String>,
    temperature: f32,
    max_tokens: u32,
) -> Result<OpenAiConfig, AiConfigError> {
    let base = get("WADDLEAI_BASE_URL").ok_or_else(|| {
        invalid(
            "WADDLEAI_BASE_URL",
            "",
            "not set; the WaddleAI proxy's address, e.g. http://waddleai-proxy:8000",
        )
    })?;
    let key = get("WADDLEAI_API_KEY").ok_or_else(|| {
        invalid(
            "WADDLEAI_API_KEY",
            "",
            "not set; a wa-… key from the WaddleAI proxy",
        )
    })?;
    if !key.starts_with("wa-") {
        return Err(invalid(
            "WADDLEAI_API_KEY",
            "***",
            "WaddleAI keys start with 'wa-'",
        ));
    }
    Ok(OpenAiConfig {
        name: "waddleai".to_owned(),
        base_url: parse_url("WADDLEAI_BASE_URL", &base)?,
        api_key: Some(key),
        model: get("WADDLEAI_MODEL").unwrap_or_else(|| "auto".to_owned()),
        temperature: either(get, "WADDLEAI_TEMPERATURE", parse_temperature, temperature)?,
        max_tokens: either(get, "WADDLEAI_MAX_TOKENS", parse_max_tokens, max_tokens)?,
        http: HttpSettings {
            timeout: either(
                get,
                "WADDLEAI_TIMEOUT",
                parse_timeout,
                Duration::from_secs(30),
            )?,
            ..HttpSettings::default()
        },
    })
}

fn openai(
    get: &impl Fn(&str) -> Option<String>,
    temperature: f32,
    max_tokens: u32,
) -> Result<OpenAiConfig, AiConfigError> {
    let key = get("OPENAI_API_KEY").ok_or_else(|| {
        invalid(
            "OPENAI_API_KEY",
            "",
            "not set; the API key of the OpenAI account",
        )
    })?;
    let base = match get("OPENAI_BASE_URL") {
        Some(url) => parse_url("OPENAI_BASE_URL", &url)?,
        None => "https://api.openai.com".to_owned(),
    };
    Ok(OpenAiConfig {
        name: "openai".to_owned(),
        base_url: base,
        api_key: Some(key),
        model: get("OPENAI_MODEL").unwrap_or_else(|| "gpt-4o-mini".to_owned()),
        temperature,
        max_tokens,
        http: HttpSettings {
            timeout: either(
                get,
                "OPENAI_TIMEOUT",
                parse_timeout,
                Duration::from_secs(30),
            )?,
            ..HttpSettings::default()
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(pairs: &[(&str, &str)]) -> Result<Option<AiSettings>, AiConfigError> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        AiSettings::from_env(|key| pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone()))
    }

    #[test]
    fn no_provider_means_ai_is_off() {
        assert_eq!(settings(&[]), Ok(None));
    }

    #[test]
    fn the_originals_names_configure_a_chain() {
        let chain = settings(&[
            ("AI_PROVIDER", "ollama, waddleai"),
            ("OLLAMA_HOST", "gpu-box"),
            ("OLLAMA_USE_TLS", "true"),
            ("OLLAMA_PORT", "8443"),
            ("AI_TEMPERATURE", "0.2"),
            ("WADDLEAI_BASE_URL", "http://proxy:8000/"),
            ("WADDLEAI_API_KEY", "wa-secret"),
        ])
        .expect("valid")
        .expect("on");
        match &chain.providers[..] {
            [
                ProviderSettings::Ollama(ollama),
                ProviderSettings::OpenAi(waddleai),
            ] => {
                assert_eq!(ollama.base_url, "https://gpu-box:8443");
                assert!((ollama.temperature - 0.2).abs() < f32::EPSILON);
                assert_eq!(waddleai.base_url, "http://proxy:8000");
                assert_eq!(waddleai.model, "auto");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(chain.build().expect("built").name(), "ollama,waddleai");
        let described = chain.describe();
        assert_eq!(
            described["providers"][0]["temperature"],
            serde_json::json!(0.2),
            "read back as written, not as 0.20000000298: {described}"
        );
    }

    #[test]
    fn mistakes_name_the_variable_and_the_fix() {
        let cases: [(&[(&str, &str)], &str); 6] = [
            (&[("AI_PROVIDER", "gemini")], "unknown provider 'gemini'"),
            (&[("AI_PROVIDER", "openai")], "OPENAI_API_KEY"),
            (
                &[
                    ("AI_PROVIDER", "waddleai"),
                    ("WADDLEAI_BASE_URL", "http://p"),
                    ("WADDLEAI_API_KEY", "sk-1"),
                ],
                "start with 'wa-'",
            ),
            (
                &[("AI_PROVIDER", "ollama"), ("AI_TEMPERATURE", "3")],
                "0 to 2",
            ),
            (
                &[
                    ("AI_PROVIDER", "ollama"),
                    ("OLLAMA_CERT_PATH", "/no/such.pem"),
                ],
                "no such file",
            ),
            (&[("AI_PROVIDER", "ollama,ollama")], "named twice"),
        ];
        for (pairs, expected) in cases {
            let err = settings(pairs).expect_err("invalid");
            assert!(err.to_string().contains(expected), "{err}");
        }
    }
}
