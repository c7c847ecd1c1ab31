//! `dispatch`: delivers outbox events to webhooks and to RabbitMQ, at least once.
//!
//! Events are written to the `outbox` table in the same transaction as the change they report.
//! The dispatcher claims due events under a lease (so several nodes can run one each), sends each
//! to every destination that has not acknowledged it yet, and records the outcome: delivered,
//! retried after an exponential backoff, or dead after `events.max_attempts` (then replayable by
//! id through `POST /v1/events/{id}/replay`). A receiver may see an event twice (a crash between a
//! send and its record, or a replay): the event id is its idempotency key. Order is kept within a
//! batch but not across retries.
//!
//! # Webhook signatures
//!
//! Each POST carries `Veza-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256>` over
//! `<t>.<raw body>` with the webhook's secret. Receivers recompute it, compare in constant time
//! and refuse a `t` too far from their clock, which stops replays of captured requests.

use crate::config;
use crate::metrics::Metrics;
use crate::outbox::Outbox;
use crate::store::{MetadataStore, OutboxEvent, Settle};
use crate::util;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// What the dispatcher needs: the store holding the outbox, its wake, the destinations and the
/// metrics it counts in. No HTTP router: it runs alone in tests.
pub struct Dispatcher {
    /// The metadata store.
    pub store: Arc<dyn MetadataStore>,
    /// Its wake.
    pub outbox: Arc<Outbox>,
    /// `[events]`: destinations, attempts, backoff.
    pub config: config::Events,
    /// Delivered, retried and dead counters.
    pub metrics: Arc<Metrics>,
    /// Cancelled at shutdown.
    pub shutdown: CancellationToken,
}

/// Events claimed at once.
const BATCH: i64 = 32;
/// How long a claim lasts; a batch that takes longer is claimed again elsewhere.
const LEASE_MS: i64 = 60_000;

/// Signs a webhook body: the `Veza-Signature` header value.
pub fn signature(secret: &str, timestamp: u64, body: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC accepts any key length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let sig = crate::util::hex(&mac.finalize().into_bytes());
    format!("t={timestamp},v1={sig}")
}

/// The JSON body sent for an event.
pub fn envelope(e: &OutboxEvent) -> serde_json::Value {
    serde_json::json!({
        "id": e.id,
        "type": e.kind,
        "created_at": util::rfc3339(e.created_at),
        "data": serde_json::from_str::<serde_json::Value>(&e.data).unwrap_or_default(),
    })
}

/// The backoff before attempt `attempts + 1`.
fn backoff(cfg: &config::Events, attempts: i64) -> i64 {
    let shift = attempts.clamp(0, 30) as u32;
    let ms = cfg.retry_backoff_ms.saturating_mul(1u64 << shift);
    ms.min(cfg.retry_backoff_max_ms) as i64
}

/// A RabbitMQ channel with publisher confirms, connected on first use and again after a failure.
struct Amqp {
    url: String,
    exchange: String,
    queue: String,
    channel: Option<(lapin::Connection, lapin::Channel)>,
}

impl Amqp {
    async fn channel(&mut self) -> Result<&lapin::Channel, lapin::Error> {
        use lapin::options::{
            ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
        };
        use lapin::types::FieldTable;
        if self
            .channel
            .as_ref()
            .is_some_and(|(c, ch)| !(c.status().connected() && ch.status().connected()))
        {
            self.channel = None;
        }
        if self.channel.is_none() {
            let conn =
                lapin::Connection::connect(&self.url, lapin::ConnectionProperties::default())
                    .await?;
            let ch = conn.create_channel().await?;
            ch.confirm_select(ConfirmSelectOptions::default()).await?;
            ch.exchange_declare(
                self.exchange.as_str().into(),
                lapin::ExchangeKind::Topic,
                ExchangeDeclareOptions {
                    durable: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await?;
            if !self.queue.is_empty() {
                ch.queue_declare(
                    self.queue.as_str().into(),
                    QueueDeclareOptions {
                        durable: true,
                        ..Default::default()
                    },
                    FieldTable::default(),
                )
                .await?;
                ch.queue_bind(
                    self.queue.as_str().into(),
                    self.exchange.as_str().into(),
                    "#".into(),
                    QueueBindOptions::default(),
                    FieldTable::default(),
                )
                .await?;
            }
            self.channel = Some((conn, ch));
        }
        Ok(&self.channel.as_ref().expect("set just above").1)
    }

    /// Publishes one event, persistent, and waits for the broker's confirm.
    async fn publish(&mut self, e: &OutboxEvent, body: &[u8]) -> Result<(), String> {
        let exchange = self.exchange.clone();
        let outcome = async {
            let ch = self.channel().await.map_err(|e| e.to_string())?;
            let props = lapin::BasicProperties::default()
                .with_message_id(e.id.as_str().into())
                .with_type(e.kind.as_str().into())
                .with_content_type("application/json".into())
                .with_delivery_mode(2);
            let confirm = ch
                .basic_publish(
                    exchange.as_str().into(),
                    e.kind.as_str().into(),
                    lapin::options::BasicPublishOptions::default(),
                    body,
                    props,
                )
                .await
                .map_err(|e| e.to_string())?;
            match confirm.await.map_err(|e| e.to_string())? {
                lapin::Confirmation::Nack(_) => Err("the broker refused the message".to_string()),
                _ => Ok(()),
            }
        }
        .await;
        if outcome.is_err() {
            self.channel = None;
        }
        outcome
    }
}

/// The destinations of `[events]`.
struct Destinations {
    http: reqwest::Client,
    webhooks: Vec<config::Webhook>,
    amqp: Option<Amqp>,
}

impl Destinations {
    fn names(&self) -> Vec<String> {
        let mut n: Vec<String> = self
            .webhooks
            .iter()
            .map(|w| format!("webhook:{}", w.url))
            .collect();
        if self.amqp.is_some() {
            n.push("amqp".into());
        }
        n
    }

    async fn send(&mut self, name: &str, e: &OutboxEvent, body: &[u8]) -> Result<(), String> {
        if name == "amqp" {
            return match &mut self.amqp {
                Some(a) => a.publish(e, body).await,
                None => Ok(()),
            };
        }
        let Some(w) = self
            .webhooks
            .iter()
            .find(|w| name.strip_prefix("webhook:") == Some(w.url.as_str()))
        else {
            // A destination since removed from the configuration: nothing to do.
            return Ok(());
        };
        let mut request = self.http.post(&w.url);
        // The receiver can continue the delivery's trace.
        if let Some(tp) = crate::telemetry::traceparent(&tracing::Span::current()) {
            request = request.header("traceparent", tp);
        }
        let r = request
            .header("content-type", "application/json")
            .header("veza-event-id", &e.id)
            .header("veza-event-type", &e.kind)
            .header(
                "veza-signature",
                signature(&w.secret, util::now_secs(), body),
            )
            .body(body.to_vec())
            .send()
            .await
            .map_err(|e| format!("{name}: {e}"))?;
        if r.status().is_success() {
            Ok(())
        } else {
            Err(format!("{name}: answered {}", r.status()))
        }
    }
}

/// Runs until shutdown, delivering outbox events.
pub async fn dispatcher(d: Dispatcher) {
    let cfg = d.config.clone();
    let mut dest = Destinations {
        http: reqwest::Client::builder()
            .timeout(Duration::from_millis(cfg.timeout_ms))
            .build()
            .unwrap_or_default(),
        webhooks: cfg.webhooks.clone(),
        amqp: (!cfg.amqp_url.is_empty()).then(|| Amqp {
            url: cfg.amqp_url.clone(),
            exchange: cfg.amqp_exchange.clone(),
            queue: cfg.amqp_queue.clone(),
            channel: None,
        }),
    };
    let names = dest.names();
    let lease = uuid::Uuid::new_v4().to_string();
    loop {
        let now = util::now_ms();
        let batch = match d
            .store
            .claim_events(&lease, now + LEASE_MS, now, BATCH)
            .await
        {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(error = %e, "claiming outbox events");
                Vec::new()
            }
        };
        let idle = batch.is_empty();
        for e in batch {
            use tracing::Instrument;
            // One trace per delivery attempt of an event, a span per destination.
            let span = tracing::info_span!(
                "outbox",
                otel.name = %format_args!("deliver {}", e.kind),
                otel.kind = "producer",
                otel.status_code = tracing::field::Empty,
                event.id = %e.id,
                event.kind = %e.kind,
                event.attempt = e.attempts + 1,
            );
            let body = envelope(&e).to_string();
            let mut delivered = e.delivered.clone();
            let mut errors = Vec::new();
            for name in &names {
                if delivered.contains(name) {
                    continue;
                }
                let to = tracing::info_span!(
                    parent: &span,
                    "deliver",
                    otel.name = %format_args!("send to {}", name.split(':').next().unwrap_or("")),
                    otel.kind = "client",
                    destination = %name,
                );
                match dest.send(name, &e, body.as_bytes()).instrument(to).await {
                    Ok(()) => delivered.push(name.clone()),
                    Err(err) => errors.push(err),
                }
            }
            if !errors.is_empty() {
                span.record("otel.status_code", "error");
            }

            let outcome = if errors.is_empty() {
                d.metrics.events_delivered.inc();
                Settle::Delivered { delivered }
            } else if e.attempts + 1 >= i64::from(cfg.max_attempts) {
                d.metrics.events_dead.inc();
                tracing::error!(parent: &span, event = %e.id, kind = %e.kind, errors = ?errors, "event dead-lettered");
                Settle::Dead {
                    delivered,
                    error: errors.join("; "),
                }
            } else {
                d.metrics.events_retried.inc();
                Settle::Retry {
                    delivered,
                    next_at: util::now_ms() + backoff(&cfg, e.attempts),
                    error: errors.join("; "),
                }
            };
            if let Err(err) = d.store.settle_event(&e, &outcome).await {
                tracing::warn!(event = %e.id, error = %err, "recording an event delivery");
            }
        }
        if idle {
            tokio::select! {
                _ = d.outbox.notified() => {}
                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                _ = d.shutdown.cancelled() => return,
            }
        } else if d.shutdown.is_cancelled() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_cover_the_timestamp_and_the_body() {
        let a = signature("secret-0123456789", 1700000000, b"{}");
        assert!(a.starts_with("t=1700000000,v1="));
        assert_eq!(a.len(), "t=1700000000,v1=".len() + 64);
        assert_ne!(a, signature("secret-0123456789", 1700000001, b"{}"));
        assert_ne!(a, signature("secret-0123456789", 1700000000, b"{ }"));
        assert_ne!(a, signature("secret-0123456780", 1700000000, b"{}"));
    }

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        let cfg = config::Events {
            retry_backoff_ms: 100,
            retry_backoff_max_ms: 1000,
            ..config::Events::default()
        };
        assert_eq!(
            (0..6).map(|a| backoff(&cfg, a)).collect::<Vec<_>>(),
            [100, 200, 400, 800, 1000, 1000]
        );
    }
}
