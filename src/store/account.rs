//! Local accounts, their sessions and invitations, as the store holds them.

/// A local account: who signs in to the web app with an email and a password, or through an
/// OpenID provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// Its id; its API subject is `acct:<id>`.
    pub id: uuid::Uuid,
    /// The email as given.
    pub email: String,
    /// Argon2id hash (PHC string); `None` for an account made by OIDC sign-in.
    pub password_hash: Option<String>,
    /// The name shown.
    pub display_name: String,
    /// The artist page's address, `/a/{handle}`: unique.
    pub handle: String,
    /// `listener`, `artist` or `admin`.
    pub role: String,
    /// The OpenID provider's issuer and subject, for an account made by OIDC sign-in.
    pub oidc: Option<(String, String)>,
    /// Unix ms.
    pub created_at: i64,
}

impl Account {
    /// The prefix of every account's API subject.
    pub const SUBJECT_PREFIX: &'static str = "acct:";

    /// The subject the account acts as: owner of what it uploads and makes.
    pub fn subject(&self) -> String {
        format!("{}{}", Self::SUBJECT_PREFIX, self.id)
    }

    /// The unique form of an email: lowercased (RFC 5321 lets the local part be case-sensitive,
    /// but no provider in use treats it so, and users expect `Ann@x` to be `ann@x`).
    pub fn email_key(email: &str) -> String {
        email.trim().to_lowercase()
    }
}

/// How an account was made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Created {
    /// Made, with the role it got (the first account may become admin) and its handle (the
    /// one asked for, with `-2`, `-3`… appended when that was taken).
    Made {
        /// `listener`, `artist` or `admin`.
        role: String,
        /// The unique handle.
        handle: String,
    },
    /// Another account holds that email.
    EmailTaken,
    /// The invitation is unknown, used or expired.
    BadInvite,
}

/// What a new account asks for.
#[derive(Debug, Clone)]
pub struct NewAccount<'a> {
    /// The account, with the role it gets unless it is the first.
    pub account: &'a Account,
    /// Whether the first account of the store becomes admin.
    pub first_is_admin: bool,
    /// The SHA-256 (hex) of the invitation code that admits it, when one is needed.
    pub invite: Option<&'a str>,
}

/// A sign-in session of the web app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// SHA-256 (hex) of the cookie's secret.
    pub token_hash: String,
    /// Its account.
    pub account_id: uuid::Uuid,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms.
    pub expires_at: i64,
}

/// What a search looks among.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SearchKind {
    /// Ready tracks.
    Track,
    /// Playlists.
    Playlist,
    /// Channels.
    Channel,
    /// Accounts with something public, or the caller's own.
    Artist,
}

/// How results are ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SearchSort {
    /// Best match first (newest when there are no terms).
    Relevance,
    /// Newest first.
    Newest,
    /// Most played in the last 30 days first: a track's plays, the sum of a playlist's or an
    /// artist's tracks' plays, a channel's listening minutes.
    Plays,
}

/// A search or a browse.
#[derive(Debug, Clone)]
pub struct Search<'a> {
    /// Among what.
    pub kind: SearchKind,
    /// Words, each matched as a prefix, all of them required; lowercase with accents folded
    /// (see [`crate::auth::accounts::fold`]). None: browse.
    pub terms: &'a [String],
    /// Whose private items are included besides the public ones (the caller).
    pub viewer: Option<&'a str>,
    /// Only this owner's items (an artist page).
    pub owner: Option<&'a str>,
    /// Order.
    pub sort: SearchSort,
    /// Results skipped (the cursor).
    pub offset: i64,
    /// At most this many.
    pub limit: i64,
    /// Unix ms, for the window of [`SearchSort::Plays`].
    pub now: i64,
}

/// One result.
#[derive(Debug, Clone)]
pub enum Hit {
    /// A track.
    Track(super::Track),
    /// A playlist.
    Playlist(super::Playlist),
    /// A channel.
    Channel(super::Channel),
    /// An artist.
    Artist(Account),
}
