//! The tokio driver of a sync [`Session`]: it moves bytes and persists effects.
//!
//! All the decisions live in the sans-IO session; this module only does what the
//! session cannot: read and write frames on a stream, hold the store while the
//! session takes a step, and persist the step's effects in one transaction before
//! the next step (so the session always reads its own writes).
//!
//! ```text
//!  reader task: stream ──frames──▶ bounded channel ─┐
//!  local publication changes (broadcast) ──────────┼─▶ step: lock store,
//!  shutdown (watch) ───────────────────────────────┘     handle_* for each input,
//!                                                        drain effects → one transaction
//!                                                        (+ disclosure log, retraction acks),
//!                                                        unlock, write frames, flush
//! ```
//!
//! Steps batch whatever has arrived (up to [`STEP_INPUTS_MAX`] frames or changes),
//! so a burst of ten thousand small messages costs a few hundred transactions,
//! not ten thousand fsyncs.
//!
//! Frames are [`labnet_protocol::frame`]'s: a 4-byte big-endian length and that
//! many bytes of a [`labnet_protocol::sync`] message, at most
//! [`MESSAGE_LEN_MAX`]. The length is checked before any of the body is
//! buffered.

use std::time::Duration;

use labnet_protocol::frame::{encode_frame, FrameDecoder};
use labnet_protocol::sync::{DocId, MESSAGE_LEN_MAX};
use labnet_protocol::NodeId;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{broadcast, mpsc, watch};
use tracing::{debug, info, warn, Instrument};

use super::store_view::StoreView;
use super::{Event, PeerInfo, Session, SessionConfig};
use crate::store::{heads_hex, NewDisclosure, Store, StoreError, StoreHandle};

/// Inputs taken into one step (one store transaction) at most.
pub const STEP_INPUTS_MAX: usize = 512;

/// Frames read ahead of the session at most; the reader waits beyond this, which
/// pushes back on the peer through the stream's flow control.
const FRAMES_QUEUED_MAX: usize = 1024;

/// Once a frame has begun to arrive, the rest of it must follow within this
/// time: a peer cannot hold a half-sent frame in our buffer forever.
pub const FRAME_BODY_TIMEOUT: Duration = Duration::from_secs(30);

/// What a node's sessions tell the rest of the node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncNotice {
    /// A replica was stored or changed.
    ReplicaChanged {
        /// Its origin.
        origin: NodeId,
        /// The publication.
        doc_id: String,
    },
    /// A replica was removed because its origin retracted it.
    ReplicaRemoved {
        /// Its origin.
        origin: NodeId,
        /// The publication.
        doc_id: String,
    },
    /// We hold everything `origin` has announced to us so far.
    CaughtUp {
        /// The origin.
        origin: NodeId,
    },
    /// `peer` acknowledged our index up to `seq`.
    PeerAcked {
        /// The peer.
        peer: NodeId,
        /// The sequence number.
        seq: u64,
    },
}

/// How a session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionEnd {
    /// We were asked to stop.
    Shutdown,
    /// The peer closed the stream.
    PeerClosed,
    /// The peer broke the protocol: close the connection with `code`.
    Violation {
        /// The close code to send.
        code: u32,
        /// What happened (ids and counts only).
        reason: String,
    },
}

/// Why a session failed on our side.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    /// Reading or writing the stream failed.
    #[error("sync stream: {0}")]
    Io(#[from] std::io::Error),
    /// Persisting the session's effects failed; the session's view of the store
    /// can no longer be trusted, so it stops (a reconnect starts cleanly).
    #[error("persisting sync effects: {0}")]
    Store(#[from] StoreError),
    /// Local changes were missed (the notification queue overflowed).
    #[error("missed {0} local change notifications; the session restarts to catch up")]
    Lagged(u64),
}

/// Everything a session's driver needs from the node.
#[derive(Clone, Debug)]
pub struct DriverContext {
    /// The node's store.
    pub store: StoreHandle,
    /// Our publications that changed (content, scope or retraction).
    pub local_changes: broadcast::Sender<DocId>,
    /// Where to report what sessions did.
    pub notices: broadcast::Sender<SyncNotice>,
    /// Session limits.
    pub config: SessionConfig,
}

enum Input {
    Frame(Vec<u8>),
    Local(DocId),
}

/// Runs one session over a stream until shutdown, the peer's close, or a
/// violation. `recv` and `send` are the two halves of one bidirectional stream.
pub async fn run_session<R, W>(
    ctx: DriverContext,
    info: PeerInfo,
    recv: R,
    mut send: W,
    mut shutdown: watch::Receiver<bool>,
) -> Result<SessionEnd, DriverError>
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin,
{
    let span = tracing::info_span!("sync", peer = %info.peer.short());
    async move {
        // Subscribe before reading anything, so no change slips between the
        // session's first look at the index and the subscription.
        let mut local = ctx.local_changes.subscribe();
        let (frames_tx, mut frames) = mpsc::channel(FRAMES_QUEUED_MAX);
        let reader = tokio::spawn(read_frames(recv, frames_tx));
        let config = ctx.config;
        let (mut session, out) = ctx
            .store
            .call(move |s| {
                let mut session = Session::new(info, config, &StoreView::new(s));
                let out = drain(s, &mut session, info.peer);
                (session, out)
            })
            .await;
        let mut step_out = out?;
        let end = loop {
            write_frames(&mut send, &step_out.transmits).await?;
            publish(&ctx.notices, &step_out.notices);
            if let Some((code, reason)) = step_out.violation.take() {
                break SessionEnd::Violation { code, reason };
            }
            let mut inputs = Vec::new();
            tokio::select! {
                frame = frames.recv() => match frame {
                    Some(Ok(bytes)) => inputs.push(Input::Frame(bytes)),
                    Some(Err(e)) => { reader.abort(); return Err(e.into()); }
                    None => break SessionEnd::PeerClosed,
                },
                change = local.recv() => match change {
                    Ok(doc_id) => inputs.push(Input::Local(doc_id)),
                    Err(broadcast::error::RecvError::Lagged(n)) => { reader.abort(); return Err(DriverError::Lagged(n)); }
                    Err(broadcast::error::RecvError::Closed) => break SessionEnd::Shutdown,
                },
                _ = shutdown.changed() => break SessionEnd::Shutdown,
            }
            // Take whatever else is already here into the same step.
            while inputs.len() < STEP_INPUTS_MAX {
                match frames.try_recv() {
                    Ok(Ok(bytes)) => inputs.push(Input::Frame(bytes)),
                    _ => break,
                }
            }
            while inputs.len() < STEP_INPUTS_MAX {
                match local.try_recv() {
                    Ok(doc_id) => inputs.push(Input::Local(doc_id)),
                    _ => break,
                }
            }
            let peer = info.peer;
            let (returned, out) = ctx
                .store
                .call(move |s| {
                    let view = StoreView::new(s);
                    for input in &inputs {
                        match input {
                            Input::Frame(bytes) => session.handle_message(&view, bytes),
                            Input::Local(doc_id) => session.handle_local_change(&view, doc_id),
                        }
                    }
                    let out = drain(s, &mut session, peer);
                    (session, out)
                })
                .await;
            session = returned;
            step_out = out?;
        };
        reader.abort();
        if end == SessionEnd::Shutdown {
            session.handle_close();
            let _ = send.shutdown().await;
        }
        match &end {
            SessionEnd::Violation { code, reason } => warn!(code, %reason, "peer broke the sync protocol"),
            other => debug!(?other, "sync session ended"),
        }
        Ok(end)
    }
    .instrument(span)
    .await
}

/// What one step produced, once persisted.
struct StepOut {
    transmits: Vec<Vec<u8>>,
    notices: Vec<SyncNotice>,
    violation: Option<(u32, String)>,
}

/// Drains the session's effects and events into one transaction, then collects
/// the frames to send. Frames are sent only after the commit: nothing is
/// acknowledged to the peer before it is on disk.
fn drain(store: &mut Store, session: &mut Session, peer: NodeId) -> Result<StepOut, StoreError> {
    let mut effects = Vec::new();
    while let Some(effect) = session.poll_effect() {
        effects.push(effect);
    }
    let mut events = Vec::new();
    while let Some(event) = session.poll_event() {
        events.push(event);
    }
    // Scope and settings of what we disclose, read before the write transaction.
    let mut disclosed = Vec::new();
    for event in &events {
        if let Event::Disclosed { doc_id, heads } = event {
            let scope = store
                .publication_row(doc_id.as_str())?
                .map(|r| r.scope)
                .unwrap_or_default();
            let settings = store
                .latest_disclosure_settings(doc_id.as_str())?
                .unwrap_or_else(|| "{}".into());
            disclosed.push((
                doc_id.as_str().to_string(),
                heads_hex(heads),
                scope,
                settings,
            ));
        }
    }
    let mut notices = Vec::new();
    let mut violation = None;
    store.batch(|b| {
        for effect in &effects {
            effect.apply(b)?;
        }
        for (doc_id, heads, scope, settings) in &disclosed {
            b.log_disclosure(&NewDisclosure {
                action: "sent",
                doc_id,
                heads,
                node_id: Some(peer),
                scope,
                settings,
            })?;
        }
        for event in &events {
            if let Event::RetractionConfirmed { doc_id, peer } = event {
                b.save_retraction_ack(doc_id.as_str(), *peer)?;
            }
        }
        Ok(())
    })?;
    for event in events {
        match event {
            Event::ReplicaChanged { doc_id, .. } => notices.push(SyncNotice::ReplicaChanged {
                origin: peer,
                doc_id: doc_id.as_str().to_string(),
            }),
            Event::RetractionReceived { doc_id } => {
                info!(doc = %doc_id.as_str(), "publication retracted by its origin");
                notices.push(SyncNotice::ReplicaRemoved {
                    origin: peer,
                    doc_id: doc_id.as_str().to_string(),
                })
            }
            Event::CaughtUp => notices.push(SyncNotice::CaughtUp { origin: peer }),
            Event::PeerAcked { seq } => notices.push(SyncNotice::PeerAcked { peer, seq }),
            Event::ProtocolViolation { code, reason } => violation = Some((code.as_u32(), reason)),
            Event::LocalFailure { doc_id, reason } => {
                warn!(doc = %doc_id.as_str(), %reason, "sync: local failure")
            }
            Event::Disclosed { .. } | Event::RetractionConfirmed { .. } => {}
        }
    }
    let mut transmits = Vec::new();
    while let Some(bytes) = session.poll_transmit() {
        transmits.push(bytes);
    }
    Ok(StepOut {
        transmits,
        notices,
        violation,
    })
}

fn publish(notices: &broadcast::Sender<SyncNotice>, list: &[SyncNotice]) {
    for n in list {
        // Nobody listening is fine: notices are for status and tests.
        let _ = notices.send(n.clone());
    }
}

async fn write_frames<W: AsyncWrite + Unpin>(
    send: &mut W,
    frames: &[Vec<u8>],
) -> std::io::Result<()> {
    if frames.is_empty() {
        return Ok(());
    }
    let total: usize = frames.iter().map(|f| f.len() + 4).sum();
    let mut buf = Vec::with_capacity(total);
    for f in frames {
        encode_frame(f, &mut buf);
    }
    send.write_all(&buf).await?;
    send.flush().await
}

/// Bytes read from the stream at a time.
const READ_CHUNK: usize = 64 * 1024;

/// Reads frames off the stream into `out` until the stream ends or fails; a
/// failure is the last thing sent.
async fn read_frames<R: AsyncRead + Unpin>(
    mut recv: R,
    out: mpsc::Sender<std::io::Result<Vec<u8>>>,
) {
    if let Err(e) = forward_frames(&mut recv, &out).await {
        let _ = out.send(Err(e)).await;
    }
}

/// Forwards whole frames until the stream ends cleanly (`Ok`), the session
/// stops listening (`Ok`), or the stream fails (`Err`).
async fn forward_frames<R: AsyncRead + Unpin>(
    recv: &mut R,
    out: &mpsc::Sender<std::io::Result<Vec<u8>>>,
) -> std::io::Result<()> {
    use std::io::{Error, ErrorKind};
    let mut decoder = FrameDecoder::new(MESSAGE_LEN_MAX);
    let mut chunk = vec![0u8; READ_CHUNK];
    loop {
        while let Some(frame) = decoder
            .next_frame()
            .map_err(|e| Error::new(ErrorKind::InvalidData, format!("sync {e}")))?
        {
            if out.send(Ok(frame)).await.is_err() {
                return Ok(());
            }
        }
        let n = if decoder.buffered_len() == 0 {
            recv.read(&mut chunk).await?
        } else {
            tokio::time::timeout(FRAME_BODY_TIMEOUT, recv.read(&mut chunk))
                .await
                .map_err(|_| Error::new(ErrorKind::TimedOut, "sync frame body timed out"))??
        };
        if n == 0 {
            return match decoder.buffered_len() {
                0 => Ok(()),
                _ => Err(Error::new(
                    ErrorKind::UnexpectedEof,
                    "the stream ended inside a sync frame",
                )),
            };
        }
        decoder.push(&chunk[..n]);
    }
}
