//! The store's schema and its forward migrations.
//!
//! The schema version is SQLite's `user_version`. Each entry of [`MIGRATIONS`] takes
//! the database from version `i` to `i + 1` and runs inside one transaction with
//! the version bump, so a crash mid-migration leaves the old version intact. A
//! database newer than this binary is refused rather than guessed at.

/// Migration `i` takes the schema from version `i` to `i + 1`. Never edit one that
/// has shipped: add a new one.
pub(crate) const MIGRATIONS: &[&str] = &[
    // 0 -> 1: the tables the foundation and the next issues need.
    r#"
    -- Automerge documents. A document is its latest snapshot plus the incremental
    -- change chunks saved since; compaction folds the chunks into a new snapshot.
    -- `heads` are the heads of everything saved (snapshot plus changes), 32-byte
    -- hashes concatenated: the next save writes only what came after them.
    CREATE TABLE documents (
        doc_id      TEXT PRIMARY KEY,
        kind        TEXT NOT NULL CHECK (kind IN ('private', 'publication', 'replica')),
        snapshot    BLOB NOT NULL,
        heads       BLOB NOT NULL,
        created_at  INTEGER NOT NULL,
        updated_at  INTEGER NOT NULL
    ) STRICT;
    CREATE TABLE document_changes (
        doc_id  TEXT NOT NULL REFERENCES documents(doc_id) ON DELETE CASCADE,
        seq     INTEGER NOT NULL,
        chunk   BLOB NOT NULL,
        PRIMARY KEY (doc_id, seq)
    ) STRICT;

    -- Peers an admin has decided about. Revoked peers keep their row: the audit
    -- trail needs to know who was trusted when.
    CREATE TABLE peers (
        node_id     TEXT PRIMARY KEY,
        name        TEXT,
        role        TEXT NOT NULL CHECK (role IN ('partner', 'subscriber')),
        state       TEXT NOT NULL CHECK (state IN ('approved', 'revoked')),
        address     TEXT,
        decided_at  INTEGER NOT NULL,
        decided_by  TEXT NOT NULL,
        last_seen   INTEGER
    ) STRICT;
    CREATE TABLE peer_events (
        id       INTEGER PRIMARY KEY AUTOINCREMENT,
        node_id  TEXT NOT NULL,
        at       INTEGER NOT NULL,
        event    TEXT NOT NULL,
        by       TEXT NOT NULL
    ) STRICT;

    -- Nodes that knocked without being approved. Bounded by the code that inserts.
    CREATE TABLE pending_peers (
        node_id     TEXT PRIMARY KEY,
        name        TEXT NOT NULL,
        address     TEXT NOT NULL,
        first_seen  INTEGER NOT NULL,
        last_seen   INTEGER NOT NULL,
        attempts    INTEGER NOT NULL
    ) STRICT;

    -- Invites: only a hash of the secret is kept.
    CREATE TABLE invites (
        invite_id    TEXT PRIMARY KEY,
        secret_hash  BLOB NOT NULL UNIQUE,
        role         TEXT NOT NULL CHECK (role IN ('partner', 'subscriber')),
        created_at   INTEGER NOT NULL,
        expires_at   INTEGER NOT NULL,
        uses_left    INTEGER NOT NULL,
        revoked_at   INTEGER
    ) STRICT;

    -- Automerge sync state per (peer, document), so a reconnect costs what was missed.
    CREATE TABLE sync_state (
        node_id  TEXT NOT NULL,
        doc_id   TEXT NOT NULL,
        state    BLOB NOT NULL,
        PRIMARY KEY (node_id, doc_id)
    ) STRICT;

    -- What left the node: every share, update, unshare and version sent to a peer.
    CREATE TABLE disclosures (
        id        INTEGER PRIMARY KEY AUTOINCREMENT,
        at        INTEGER NOT NULL,
        action    TEXT NOT NULL,
        doc_id    TEXT NOT NULL,
        heads     TEXT NOT NULL,
        node_id   TEXT,
        scope     TEXT NOT NULL,
        settings  TEXT NOT NULL
    ) STRICT;
    CREATE INDEX disclosures_by_peer ON disclosures(node_id, at);
    CREATE INDEX disclosures_by_time ON disclosures(at);
    "#,
    // 1 -> 2: what federated sync needs to remember.
    r#"
    -- Our publications, numbered by a local update sequence (Syncthing's index
    -- sequence numbers): every content, scope or retraction change takes the
    -- next number, so a peer that acknowledged up to N needs only what is after N.
    -- Retracted publications stay as tombstones so peers that had them learn.
    CREATE TABLE publication_index (
        doc_id      TEXT PRIMARY KEY,
        seq         INTEGER NOT NULL UNIQUE,
        scope       TEXT NOT NULL,
        retracted   INTEGER NOT NULL DEFAULT 0,
        updated_at  INTEGER NOT NULL
    ) STRICT;
    -- The index numbering: its epoch changes only if the index is ever rebuilt,
    -- which tells peers to start over.
    CREATE TABLE index_meta (
        id        INTEGER PRIMARY KEY CHECK (id = 1),
        epoch     INTEGER NOT NULL,
        next_seq  INTEGER NOT NULL
    ) STRICT;
    INSERT INTO index_meta (id, epoch, next_seq) VALUES (1, abs(random()) % 4294967296 + 1, 1);

    -- Other nodes' publications held here, and who published each.
    CREATE TABLE replicas (
        doc_id  TEXT PRIMARY KEY REFERENCES documents(doc_id) ON DELETE CASCADE,
        origin  TEXT NOT NULL
    ) STRICT;
    CREATE INDEX replicas_by_origin ON replicas(origin);

    -- Replica side: how far we got in each origin's index.
    CREATE TABLE resume_points (
        origin  TEXT PRIMARY KEY,
        epoch   INTEGER NOT NULL,
        seq     INTEGER NOT NULL
    ) STRICT;

    -- Origin side: how far each peer acknowledged our index, and when.
    CREATE TABLE peer_acks (
        node_id  TEXT PRIMARY KEY,
        epoch    INTEGER NOT NULL,
        seq      INTEGER NOT NULL,
        at       INTEGER NOT NULL
    ) STRICT;

    -- Which peers confirmed a retraction.
    CREATE TABLE retraction_acks (
        doc_id   TEXT NOT NULL,
        node_id  TEXT NOT NULL,
        at       INTEGER NOT NULL,
        PRIMARY KEY (doc_id, node_id)
    ) STRICT;
    "#,
    // 2 -> 3: the disclosure log by publication. Every version sent to a peer
    // looks up the publication's latest share or update settings
    // (`latest_disclosure_settings`); without this index that is a scan of the
    // whole log, which only grows. An index on `doc_id` also holds the rowid
    // (`id`), so "latest first" is read straight from it.
    r#"
    CREATE INDEX disclosures_by_doc ON disclosures(doc_id);
    "#,
    // 3 -> 4: what a node claims is kept apart from what the admin decided.
    // A pending request remembers the role the node claimed, so approving it
    // without a role gives it that role; a peer's handshake name goes to
    // `claimed_name` and no longer replaces the name it was approved under.
    r#"
    ALTER TABLE pending_peers ADD COLUMN role TEXT
        CHECK (role IS NULL OR role IN ('partner', 'subscriber'));
    ALTER TABLE peers ADD COLUMN claimed_name TEXT;
    "#,
    r#"
    -- Version 2 of the wire: every version of a publication comes with a
    -- statement signed by its origin. One row per publication this node holds
    -- or serves: our own (via NULL) and other origins' (via = the peer that
    -- delivered the version). A retracted statement is a tombstone: it keeps
    -- older versions from coming back and is relayed so others learn.
    -- relay_seq numbers, in our index's sequence, the public statements of
    -- other origins that we serve on (relay).
    CREATE TABLE statements (
        doc_id       TEXT PRIMARY KEY,
        origin       TEXT NOT NULL,
        version      INTEGER NOT NULL,
        scope_class  TEXT NOT NULL CHECK (scope_class IN ('public', 'partners', 'named')),
        retracted    INTEGER NOT NULL CHECK (retracted IN (0, 1)),
        signed       BLOB NOT NULL,
        via          TEXT,
        relay_seq    INTEGER UNIQUE,
        received_at  INTEGER NOT NULL
    ) STRICT;
    CREATE INDEX statements_by_via ON statements(via);

    -- Signed retraction confirmations: of our own retractions (collected
    -- here), and of other origins' (kept until forwarded towards the origin
    -- through the peer that delivered the retraction).
    CREATE TABLE confirmations (
        doc_id     TEXT NOT NULL,
        confirmer  TEXT NOT NULL,
        version    INTEGER NOT NULL,
        signed     BLOB NOT NULL,
        forwarded  INTEGER NOT NULL DEFAULT 0 CHECK (forwarded IN (0, 1)),
        at         INTEGER NOT NULL,
        PRIMARY KEY (doc_id, confirmer)
    ) STRICT;

    -- Which version of each of our publications each peer was sent: decides
    -- whom a scope change must withdraw a publication from, and whose
    -- confirmation a retraction waits for.
    CREATE TABLE deliveries (
        node_id  TEXT NOT NULL,
        doc_id   TEXT NOT NULL,
        version  INTEGER NOT NULL,
        at       INTEGER NOT NULL,
        PRIMARY KEY (node_id, doc_id)
    ) STRICT;
    -- Version 1's Automerge sync states told the same, for those peers.
    INSERT INTO deliveries (node_id, doc_id, version, at)
        SELECT s.node_id, s.doc_id, p.seq, p.updated_at
        FROM sync_state s JOIN publication_index p ON p.doc_id = s.doc_id;
    DROP TABLE sync_state;

    -- Replicas received over version 1 carry no statement and cannot be
    -- verified: drop them, and start every peer's index over, so that they
    -- come back signed. (Our own publications get their first statements at
    -- the first start, signed with the node key: see Store::sign_missing_statements.)
    DELETE FROM replicas;
    DELETE FROM documents WHERE kind = 'replica';
    DELETE FROM resume_points;
    "#,
    // 5 -> 6: the disclosure log by publication and action. The lookup every
    // version sent runs (`latest_disclosure_settings`) wants a publication's
    // latest share, update or reissue; `disclosures_by_doc` finds the
    // publication's lines but then reads every one of them, and the `sent`
    // lines (one per peer per version) are nearly all of them and only grow.
    // With the action in the index the lookup reads only the lines it wants.
    // The new index starts with `doc_id`, so it serves everything the old one
    // did, which is dropped.
    r#"
    CREATE INDEX disclosures_by_doc_action ON disclosures(doc_id, action);
    DROP INDEX disclosures_by_doc;
    "#,
];
