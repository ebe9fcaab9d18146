//! The tokio driver of a sync [`Session`]: it moves bytes and persists effects.
//!
//! All the decisions live in the sans-IO session; this module only does what the
//! session cannot: read and write frames on a stream, keep time, run the
//! session's steps on the blocking pool with a read connection of the
//! session's own, and persist each step's effects in one transaction through
//! the store's one writer before the next step (so the session always reads
//! its own writes).
//!
//! A step reads in one snapshot ([`crate::store::Store::read_snapshot`]):
//! every read of the step (index pages, statements, the disclosure settings
//! `drain` looks up) sees one committed state, while the writer commits beside
//! it. Reads taken at different moments could describe an index no commit
//! ever had: an inventory that covers a seq it never lists, which the peer
//! then acknowledges past for good.
//!
//! ```text
//!  reader task: stream ──frames──▶ bounded channel ─┐
//!  local changes, relays, confirmations (broadcast) ┼─▶ step (blocking pool, own read connection):
//!  session deadline (poll_timeout) ─────────────────┤     handle_* for each input, drain
//!  shutdown (watch) ────────────────────────────────┘   persist: one transaction via the writer
//!                                                        (+ disclosure log); write frames, flush
//! ```
//!
//! One peer's Automerge work (checking and applying a delivery, collecting the
//! changes for a `Want`) runs in its own step on its own connection: it never
//! holds a lock another session or an admin command needs. The writer is held
//! only for the transaction that persists a step's effects.
//!
//! Steps batch whatever has arrived (up to [`STEP_INPUTS_MAX`] frames or changes),
//! so a burst of ten thousand small messages costs a few hundred transactions,
//! not ten thousand fsyncs.
//!
//! Frames are [`labnet_protocol::frame`]'s: a 4-byte big-endian length and that
//! many bytes of a [`labnet_protocol::sync`] message, at most
//! [`MESSAGE_LEN_MAX`]. The length is checked before any of the body is
//! buffered. A write that the peer does not take within [`WRITE_TIMEOUT`]
//! ends the session: a peer that stops reading cannot hold our buffers.
//!
//! Memory per connection is bounded in bytes, not only in frames. What the
//! peer sent and we have not handled yet lives in three places, each bounded:
//!
//! | where                         | at most                                   |
//! |-------------------------------|-------------------------------------------|
//! | QUIC's receive window         | the transport's windows (`transport::endpoint`) |
//! | the frame decoder             | one frame under way ([`MESSAGE_LEN_MAX`]) plus one read ([`READ_CHUNK`]) |
//! | frames queued for the session | [`FRAMES_QUEUED_BYTES_MAX`] (and [`FRAMES_QUEUED_MAX`] frames) |
//!
//! A queued frame holds its share of [`FRAMES_QUEUED_BYTES_MAX`] until the
//! step that handles it is over, so frames being handled count too. When the
//! budget is spent the reader stops reading; QUIC's flow control then stops
//! the peer. A peer that sends faster than we handle is back-pressured, never
//! buffered without bound.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use labnet_protocol::frame::{encode_frame, FrameDecoder};
use labnet_protocol::sync::{DocId, MESSAGE_LEN_MAX};
use labnet_protocol::NodeId;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{broadcast, mpsc, watch, OwnedSemaphorePermit, Semaphore};
use tracing::{debug, info, warn, Instrument};

use super::session::Closed;
use super::store_view::StoreView;
use super::{Effect, Event, PeerInfo, Session, SessionConfig};
use crate::store::{heads_hex, NewDisclosure, Store, StoreError, StoreHandle};

/// The most inputs (frames plus local changes) one step takes: bounds how
/// long a step holds its thread and how big its transaction gets.
pub const STEP_INPUTS_MAX: usize = 512;

/// Frames read ahead of the session, however small: bounds the per-frame
/// bookkeeping (a flood of empty frames costs a channel slot each). Bytes are
/// bounded by [`FRAMES_QUEUED_BYTES_MAX`].
const FRAMES_QUEUED_MAX: usize = 1024;

/// Bytes of frames read ahead of the session, or being handled by the current
/// step. Two of the largest frames ([`MESSAGE_LEN_MAX`], 8 MiB): one being
/// handled while the next is read, which keeps an honest initial sync
/// streaming, while a peer that sends faster than we handle makes us hold at
/// most 16 MiB before the reader stops reading. Without it 1,024 frames of 8
/// MiB could be queued: 8 GiB for one connection.
pub const FRAMES_QUEUED_BYTES_MAX: usize = 2 * MESSAGE_LEN_MAX;

/// What a queued frame is charged beyond its bytes: the `Vec` and the channel
/// slot that carry it, so empty frames are not free.
const FRAME_QUEUED_OVERHEAD_BYTES: usize = 64;

/// How long the rest of a frame may take once its first bytes arrived.
pub const FRAME_BODY_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a write of one step's frames may take. A step writes at most
/// [`STEP_INPUTS_MAX`] answers; 60 s is far beyond a slow link's time for
/// them, and a peer that does not read for that long is dropped.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(60);

/// What a session tells the rest of the node (status, metrics, tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncNotice {
    /// A new version of another origin's publication was stored.
    ReplicaChanged {
        /// The publication's origin.
        origin: NodeId,
        /// The peer that delivered it.
        via: NodeId,
        /// The publication.
        doc_id: String,
    },
    /// A valid version of another origin's publication was refused: the
    /// origin's copies are at the replica quota. Nothing was stored.
    ReplicaRefused {
        /// The publication's origin.
        origin: NodeId,
        /// The peer that delivered it.
        via: NodeId,
        /// The publication.
        doc_id: String,
    },
    /// Our copy of another origin's publication was deleted.
    ReplicaRemoved {
        /// The publication's origin.
        origin: NodeId,
        /// The publication.
        doc_id: String,
    },
    /// We hold everything `origin`'s index listed (the peer of the session).
    CaughtUp {
        /// The peer.
        origin: NodeId,
    },
    /// A peer acknowledged our index up to `seq`.
    PeerAcked {
        /// The peer.
        peer: NodeId,
        /// The acknowledged sequence number.
        seq: u64,
    },
    /// A node confirmed deleting a publication we retracted.
    RetractionConfirmed {
        /// The publication.
        doc_id: String,
        /// The confirming node.
        confirmer: NodeId,
    },
}

/// How a session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionEnd {
    /// We are shutting down.
    Shutdown,
    /// The peer closed the stream.
    PeerClosed,
    /// The peer broke the protocol; close the connection with `code`.
    Violation {
        /// The close code.
        code: u32,
        /// Why, for the log.
        reason: String,
    },
}

/// Why a session failed on our side.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    /// The stream failed.
    #[error("sync stream: {0}")]
    Io(#[from] std::io::Error),
    /// The store failed.
    #[error("persisting sync effects: {0}")]
    Store(#[from] StoreError),
    /// The session hit a local failure (a read), reported by the session.
    #[error("sync session: {0}")]
    Local(String),
    /// Local change notifications were missed.
    #[error("missed {0} local change notifications; the session restarts to catch up")]
    Lagged(u64),
    /// The peer did not take our frames in time.
    #[error("the peer did not read for {0:?}; dropped")]
    WriteTimeout(Duration),
}

/// What every session of a node shares.
#[derive(Clone, Debug)]
pub struct DriverContext {
    /// The store's one writer.
    pub store: StoreHandle,
    /// The store's file, which each session opens a read connection to.
    pub store_path: PathBuf,
    /// Changes to what we serve (our publications, relayed ones, confirmations).
    pub local_changes: broadcast::Sender<DocId>,
    /// Where notices go.
    pub notices: broadcast::Sender<SyncNotice>,
    /// Session limits.
    pub config: SessionConfig,
}

enum Input {
    /// A frame, and its share of [`FRAMES_QUEUED_BYTES_MAX`] (given back when
    /// the step that handles it drops it).
    Frame(Vec<u8>, #[allow(dead_code)] OwnedSemaphorePermit),
    Local,
    Timeout,
}

/// A frame read off the stream, with its share of the byte budget.
type QueuedFrame = std::io::Result<(Vec<u8>, OwnedSemaphorePermit)>;

/// What one step produced, read under the step's read connection.
struct StepOut {
    effects: Vec<Effect>,
    events: Vec<Event>,
    /// Scope and settings of each disclosed version, for the disclosure log.
    disclosed: Vec<(String, String, String, String)>,
    transmits: Vec<Vec<u8>>,
}

/// Runs one session until it ends.
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
        let budget = Arc::new(Semaphore::new(FRAMES_QUEUED_BYTES_MAX));
        let reader = tokio::spawn(read_frames(recv, frames_tx, budget));
        let config = ctx.config;
        let peer = info.peer;
        let local_id = info.local;
        let path = ctx.store_path.clone();
        let started = blocking(move || {
            let store = Store::open_reader(&path)?;
            let (session, out) = store.read_snapshot(|snapshot| {
                let mut session = Session::new(info, config, &StoreView::new(snapshot, local_id), Instant::now());
                let out = drain(snapshot, &mut session);
                Ok((session, out))
            })?;
            Ok::<_, StoreError>((session, store, out))
        })
        .await;
        let (mut session, mut reader_store, out) = match started {
            Ok(v) => v,
            Err(e) => {
                reader.abort();
                return Err(e.into());
            }
        };
        let mut step_out = out?;
        let end = loop {
            persist(&ctx, peer, &step_out).await?;
            let transmits = std::mem::take(&mut step_out.transmits);
            match tokio::time::timeout(WRITE_TIMEOUT, write_frames(&mut send, &transmits)).await {
                Ok(written) => written?,
                Err(_) => {
                    reader.abort();
                    return Err(DriverError::WriteTimeout(WRITE_TIMEOUT));
                }
            }
            match session.closed() {
                Some(Closed::Violation(code, reason)) => {
                    break SessionEnd::Violation {
                        code: code.as_u32(),
                        reason: reason.clone(),
                    }
                }
                Some(Closed::Local(reason)) => {
                    reader.abort();
                    return Err(DriverError::Local(reason.clone()));
                }
                None => {}
            }
            // A shutdown that came before this session started listening
            // is not a change it would see: look at the value itself.
            if *shutdown.borrow_and_update() {
                break SessionEnd::Shutdown;
            }
            let deadline = session.poll_timeout();
            let mut inputs = Vec::new();
            tokio::select! {
                frame = frames.recv() => match frame {
                    Some(Ok((bytes, permit))) => inputs.push(Input::Frame(bytes, permit)),
                    Some(Err(e)) => match framing_violation(&e) {
                        Some(end) => break end,
                        None => { reader.abort(); return Err(e.into()); }
                    },
                    None => break SessionEnd::PeerClosed,
                },
                change = local.recv() => match change {
                    Ok(_) => inputs.push(Input::Local),
                    Err(broadcast::error::RecvError::Lagged(n)) => { reader.abort(); return Err(DriverError::Lagged(n)); }
                    Err(broadcast::error::RecvError::Closed) => break SessionEnd::Shutdown,
                },
                _ = sleep_until(deadline) => inputs.push(Input::Timeout),
                _ = shutdown.changed() => break SessionEnd::Shutdown,
            }
            // Take whatever else is already here into the same step.
            // A read error behind these frames is kept for after them: the
            // frames before it are the peer's and are handled first.
            let mut read_error = None;
            while inputs.len() < STEP_INPUTS_MAX {
                match frames.try_recv() {
                    Ok(Ok((bytes, permit))) => inputs.push(Input::Frame(bytes, permit)),
                    Ok(Err(e)) => {
                        read_error = Some(e);
                        break;
                    }
                    Err(_) => break,
                }
            }
            // Many local changes in a row need one look at the index.
            let mut local_seen = inputs.iter().any(|i| matches!(i, Input::Local));
            while let Ok(_) | Err(broadcast::error::TryRecvError::Lagged(_)) = local.try_recv() {
                local_seen = true;
            }
            if local_seen && !inputs.iter().any(|i| matches!(i, Input::Local)) {
                inputs.push(Input::Local);
            }
            let (returned, store, out) = blocking(move || {
                let out = reader_store.read_snapshot(|snapshot| {
                    let view = StoreView::new(snapshot, local_id);
                    for input in &inputs {
                        let now = Instant::now();
                        match input {
                            Input::Frame(bytes, _) => session.handle_message(&view, now, bytes),
                            Input::Local => session.handle_local_change(&view, now),
                            Input::Timeout => session.handle_timeout(now),
                        }
                    }
                    drain(snapshot, &mut session)
                });
                (session, reader_store, out)
            })
            .await;
            session = returned;
            reader_store = store;
            step_out = out?;
            if let Some(e) = read_error {
                persist(&ctx, peer, &step_out).await?;
                match framing_violation(&e) {
                    Some(end) if session.closed().is_none() => break end,
                    _ if session.closed().is_some() => {}
                    _ => {
                        reader.abort();
                        return Err(e.into());
                    }
                }
            }
        };
        reader.abort();
        if end == SessionEnd::Shutdown {
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

/// The violation a framing error is, if the peer caused it: a frame over
/// the limit, a stream that ended inside a frame, or a frame body that
/// stalled. Other read errors (the connection was lost) are not the peer's
/// protocol to break.
fn framing_violation(e: &std::io::Error) -> Option<SessionEnd> {
    use labnet_protocol::close::{CloseCode, ViolationCode};
    use std::io::ErrorKind;
    let code = match e.kind() {
        ErrorKind::InvalidData => CloseCode::FrameTooLarge.as_u32(),
        ErrorKind::UnexpectedEof => ViolationCode::MalformedMessage.as_u32(),
        ErrorKind::TimedOut => ViolationCode::Stalled.as_u32(),
        _ => return None,
    };
    Some(SessionEnd::Violation {
        code,
        reason: e.to_string(),
    })
}

/// Sleeps until `deadline`, or forever when there is none.
async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

/// Runs `f` on the blocking pool. A panic in it is re-raised here; a
/// cancelled task (the runtime is shutting down) never returns.
async fn blocking<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> R {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(_) => std::future::pending().await,
    }
}

/// Takes a step's outputs out of the session, and reads (on the step's read
/// connection) what the disclosure log needs about each disclosed version.
fn drain(store: &Store, session: &mut Session) -> Result<StepOut, StoreError> {
    let mut effects = Vec::new();
    while let Some(effect) = session.poll_effect() {
        effects.push(effect);
    }
    let mut events = Vec::new();
    while let Some(event) = session.poll_event() {
        events.push(event);
    }
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
    let mut transmits = Vec::new();
    while let Some(bytes) = session.poll_transmit() {
        transmits.push(bytes);
    }
    Ok(StepOut {
        effects,
        events,
        disclosed,
        transmits,
    })
}

/// Persists a step's effects and disclosure-log lines in one transaction on
/// the writer, then tells the node what happened.
async fn persist(ctx: &DriverContext, peer: NodeId, out: &StepOut) -> Result<(), DriverError> {
    if !out.effects.is_empty() || !out.disclosed.is_empty() {
        let effects = out.effects.clone();
        let disclosed = out.disclosed.clone();
        ctx.store
            .call(move |s| {
                s.batch(|b| {
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
                    Ok(())
                })
            })
            .await?;
    }
    let mut notices = Vec::new();
    for event in &out.events {
        match event {
            Event::ReplicaChanged {
                doc_id,
                origin,
                relayed,
                ..
            } => {
                notices.push(SyncNotice::ReplicaChanged {
                    origin: *origin,
                    via: peer,
                    doc_id: doc_id.as_str().to_string(),
                });
                if *relayed {
                    let _ = ctx.local_changes.send(doc_id.clone());
                }
            }
            Event::RetractionReceived {
                doc_id,
                origin,
                relayed,
            } => {
                info!(doc = %doc_id.as_str(), "publication retracted by its origin");
                notices.push(SyncNotice::ReplicaRemoved {
                    origin: *origin,
                    doc_id: doc_id.as_str().to_string(),
                });
                if *relayed {
                    let _ = ctx.local_changes.send(doc_id.clone());
                }
            }
            Event::ConfirmationToForward { doc_id } => {
                let _ = ctx.local_changes.send(doc_id.clone());
            }
            Event::RetractionConfirmed { doc_id, confirmer } => {
                notices.push(SyncNotice::RetractionConfirmed {
                    doc_id: doc_id.as_str().to_string(),
                    confirmer: *confirmer,
                })
            }
            Event::QuotaExceeded { doc_id, origin, .. } => {
                notices.push(SyncNotice::ReplicaRefused {
                    origin: *origin,
                    via: peer,
                    doc_id: doc_id.as_str().to_string(),
                })
            }
            Event::CaughtUp => notices.push(SyncNotice::CaughtUp { origin: peer }),
            Event::PeerAcked { seq } => notices.push(SyncNotice::PeerAcked { peer, seq: *seq }),
            Event::LocalFailure { reason } => warn!(%reason, "sync: local failure"),
            Event::ProtocolViolation { .. } | Event::Disclosed { .. } | Event::Stale { .. } => {}
        }
    }
    publish(&ctx.notices, &notices);
    Ok(())
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

/// Bytes read from the stream at a time: what the decoder may hold beyond
/// one frame.
const READ_CHUNK: usize = 64 * 1024;

/// Reads frames off the stream into `out` until the stream ends or fails; a
/// failure is the last thing sent. Each frame first takes its share of
/// `budget`: while the session holds [`FRAMES_QUEUED_BYTES_MAX`], nothing
/// more is read.
async fn read_frames<R: AsyncRead + Unpin>(
    mut recv: R,
    out: mpsc::Sender<QueuedFrame>,
    budget: Arc<Semaphore>,
) {
    if let Err(e) = forward_frames(&mut recv, &out, &budget).await {
        let _ = out.send(Err(e)).await;
    }
}

/// Forwards whole frames until the stream ends cleanly (`Ok`), the session
/// stops listening (`Ok`), or the stream fails (`Err`).
async fn forward_frames<R: AsyncRead + Unpin>(
    recv: &mut R,
    out: &mpsc::Sender<QueuedFrame>,
    budget: &Arc<Semaphore>,
) -> std::io::Result<()> {
    use std::io::{Error, ErrorKind};
    let mut decoder = FrameDecoder::new(MESSAGE_LEN_MAX);
    let mut chunk = vec![0u8; READ_CHUNK];
    loop {
        while let Some(frame) = decoder
            .next_frame()
            .map_err(|e| Error::new(ErrorKind::InvalidData, format!("sync {e}")))?
        {
            // The decoder refuses frames over MESSAGE_LEN_MAX, so the cost
            // never exceeds the budget and the wait always ends.
            let cost = (frame.len() + FRAME_QUEUED_OVERHEAD_BYTES).min(FRAMES_QUEUED_BYTES_MAX);
            let cost = u32::try_from(cost).unwrap_or(u32::MAX);
            let Ok(permit) = Arc::clone(budget).acquire_many_owned(cost).await else {
                return Ok(());
            };
            if out.send(Ok((frame, permit))).await.is_err() {
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
