//! Search and browsing. The visibility rules and orders are written once; only the full-text
//! match differs: FTS5's `MATCH` with `"word"*` prefixes and its `rank` on SQLite, `@@` a
//! `to_tsquery` of `word:*` prefixes and `ts_rank` on PostgreSQL. This macro is expanded inside
//! `sql_store!`.

use super::super::account::SearchKind;
use super::rows::{ACCOUNT_COLUMNS, CHANNEL_COLUMNS, PLAYLIST_COLUMNS, TRACK_COLUMNS};

/// Thirty days, the window of the "most played" order.
pub(super) const PLAYS_WINDOW_MS: i64 = 30 * 86_400_000;

/// A column list with every column prefixed by `t.`.
pub(super) fn prefixed(columns: &str) -> String {
    columns
        .split(',')
        .map(|c| format!("t.{}", c.trim()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The table, visibility condition and plays measure of a kind. `$1` is the viewer's subject
/// (`''` for none), `$2` the only owner (`''` for any), `$3` the start of the plays window.
pub(super) fn kind_sql(kind: SearchKind) -> (&'static str, String, &'static str, &'static str) {
    match kind {
        SearchKind::Track => (
            "tracks",
            prefixed(TRACK_COLUMNS),
            "((t.visibility = 'public' AND t.status = 'ready') OR t.owner = $1) \
             AND ($2 = '' OR t.owner = $2)",
            "(SELECT COALESCE(SUM(p.plays), 0) FROM track_plays p \
              WHERE p.track_id = t.id AND p.day >= $3)",
        ),
        SearchKind::Playlist => (
            "playlists",
            prefixed(PLAYLIST_COLUMNS),
            "(t.visibility = 'public' OR t.owner = $1) AND ($2 = '' OR t.owner = $2)",
            "(SELECT COALESCE(SUM(p.plays), 0) FROM playlist_entries e \
              JOIN track_plays p ON p.track_id = e.track_id \
              WHERE e.playlist_id = t.id AND p.day >= $3)",
        ),
        SearchKind::Channel => (
            "channels",
            prefixed(CHANNEL_COLUMNS),
            "(t.visibility = 'public' OR t.owner = $1) AND ($2 = '' OR t.owner = $2)",
            "(SELECT COALESCE(SUM(m.mean), 0) FROM listener_minutes m \
              WHERE m.channel_id = t.id AND m.dimension = 'protocol' AND m.minute >= $3)",
        ),
        SearchKind::Artist => (
            "accounts",
            prefixed(ACCOUNT_COLUMNS),
            "(('acct:' || t.id) = $1 \
                  OR EXISTS (SELECT 1 FROM tracks x WHERE x.owner = ('acct:' || t.id) \
                             AND x.visibility = 'public' AND x.status = 'ready') \
                  OR EXISTS (SELECT 1 FROM playlists x WHERE x.owner = ('acct:' || t.id) \
                             AND x.visibility = 'public') \
                  OR EXISTS (SELECT 1 FROM channels x WHERE x.owner = ('acct:' || t.id) \
                             AND x.visibility = 'public')) \
                 AND ($2 = '' OR ('acct:' || t.id) = $2)",
            "(SELECT COALESCE(SUM(p.plays), 0) FROM tracks x \
                  JOIN track_plays p ON p.track_id = x.id \
                  WHERE x.owner = ('acct:' || t.id) AND p.day >= $3)",
        ),
    }
}

macro_rules! search_impl {
    ($name:ident, $db:ty, $dialect:literal) => {
        #[async_trait::async_trait]
        impl SearchStore for $name {
            async fn search(&self, q: &Search<'_>) -> Result<Vec<Hit>> {
                let (table, columns, visible, plays) = search::kind_sql(q.kind);
                let sqlite = $dialect == "sqlite";
                let terms: Vec<&str> = q
                    .terms
                    .iter()
                    .map(|t| t.as_str())
                    .filter(|t| !t.is_empty() && t.chars().all(char::is_alphanumeric))
                    .collect();
                let matching = !terms.is_empty();
                let (join, condition, rank) = match (matching, sqlite) {
                    (false, _) => (String::new(), String::new(), String::new()),
                    (true, true) => (
                        format!(
                            "JOIN (SELECT rowid AS r, rank FROM {table}_fts \
                             WHERE {table}_fts MATCH $6) f ON f.r = t.rowid"
                        ),
                        String::new(),
                        "f.rank, ".to_string(),
                    ),
                    (true, false) => (
                        String::new(),
                        " AND t.search @@ to_tsquery('simple', $6)".to_string(),
                        "ts_rank(t.search, to_tsquery('simple', $6)) DESC, ".to_string(),
                    ),
                };
                let order = match q.sort {
                    SearchSort::Relevance if matching => format!("{rank}t.id DESC"),
                    SearchSort::Relevance | SearchSort::Newest => "t.id DESC".to_string(),
                    SearchSort::Plays => format!("{plays} DESC, t.id DESC"),
                };
                // $3 is only read by the plays order; reading it always keeps the parameters
                // the same for PostgreSQL, which refuses a parameter it cannot type.
                let sql = format!(
                    "SELECT {columns} FROM {table} t {join} \
                     WHERE {visible}{condition} AND $3 >= 0 \
                     ORDER BY {order} LIMIT $4 OFFSET $5"
                );
                let pattern = if sqlite {
                    terms
                        .iter()
                        .map(|t| format!("\"{t}\"*"))
                        .collect::<Vec<_>>()
                        .join(" ")
                } else {
                    terms
                        .iter()
                        .map(|t| format!("{t}:*"))
                        .collect::<Vec<_>>()
                        .join(" & ")
                };
                let since = q.now - search::PLAYS_WINDOW_MS;
                macro_rules! run {
                    ($row:ty) => {{
                        let mut query = sqlx::query_as::<_, $row>(sqlx::AssertSqlSafe(sql.clone()))
                            .bind(q.viewer.unwrap_or(""))
                            .bind(q.owner.unwrap_or(""))
                            .bind(since)
                            .bind(q.limit)
                            .bind(q.offset);
                        if matching {
                            query = query.bind(pattern.clone());
                        }
                        query.fetch_all(&self.pool).await?
                    }};
                }
                Ok(match q.kind {
                    SearchKind::Track => run!(TrackRow)
                        .into_iter()
                        .map(|r| Track::try_from(r).map(Hit::Track))
                        .collect::<Result<_>>()?,
                    SearchKind::Playlist => run!(PlaylistRow)
                        .into_iter()
                        .map(|r| Playlist::try_from(r).map(Hit::Playlist))
                        .collect::<Result<_>>()?,
                    SearchKind::Channel => run!(ChannelRow)
                        .into_iter()
                        .map(|r| Channel::try_from(r).map(Hit::Channel))
                        .collect::<Result<_>>()?,
                    SearchKind::Artist => run!(AccountRow)
                        .into_iter()
                        .map(|r| Account::try_from(r).map(Hit::Artist))
                        .collect::<Result<_>>()?,
                })
            }
        }
    };
}
