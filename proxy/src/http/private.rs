//! A member connection kept for one client connection only: what a servicegroup that sends
//! PROXY protocol headers reuses instead of the member's shared pool.
//!
//! Such a connection began with one client's header, so no other client's request may go on
//! it; that client's next request may (HAProxy's "private" connections). Each client
//! connection keeps at most one, for the member its last request went to; it closes when the
//! client connection ends (the last holder drops it), or at the client's next request once the
//! member is draining.

use std::sync::{Arc, Mutex, PoisonError};

use super::h1_client::MemberConnection;
use crate::member::MemberState;

/// The member connection one client connection keeps.
#[derive(Debug, Default)]
pub struct PrivateConnection {
    kept: Mutex<Option<(Arc<MemberState>, MemberConnection)>>,
}

impl PrivateConnection {
    /// The kept connection, if it goes to `member` and is still open. One kept for a member
    /// that is draining now is closed.
    pub fn take(&self, member: &MemberState) -> Option<MemberConnection> {
        let mut kept = self.kept.lock().unwrap_or_else(PoisonError::into_inner);
        let (to, _) = kept.as_ref()?;
        if to.is_draining() {
            *kept = None;
            return None;
        }
        if !std::ptr::eq(Arc::as_ptr(to), member) {
            return None;
        }
        let (_, mut conn) = kept.take()?;
        conn.is_usable().then_some(conn)
    }

    /// Keeps `conn`, whose response has ended, for this client's next request (replacing,
    /// and so closing, one kept before); a draining member's is closed instead.
    pub fn keep(&self, member: Arc<MemberState>, conn: MemberConnection) {
        if member.is_draining() {
            return;
        }
        let mut kept = self.kept.lock().unwrap_or_else(PoisonError::into_inner);
        *kept = Some((member, conn));
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::net::TcpListener;

    use super::*;
    use crate::member::MemberKey;

    fn member(addr: std::net::SocketAddr) -> Arc<MemberState> {
        let key = MemberKey {
            group: "g".into(),
            addr,
        };
        MemberState::new(key, 0)
    }

    #[tokio::test]
    async fn a_kept_connection_serves_only_its_member_and_not_once_that_one_drains() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let held = tokio::spawn(async move {
            let mut open = Vec::new();
            while let Ok((stream, _)) = listener.accept().await {
                open.push(stream);
            }
        });
        let (a, other) = (member(addr), member("127.0.0.2:9".parse().unwrap()));
        let connect = || a.pool.connect(Duration::from_secs(5), None, None);
        let private = PrivateConnection::default();

        private.keep(a.clone(), connect().await.unwrap());
        assert!(private.take(&other).is_none(), "another member's request");
        assert!(private.take(&a).is_some(), "its own member's");
        assert!(private.take(&a).is_none(), "taken: no longer kept");

        private.keep(a.clone(), connect().await.unwrap());
        a.set_draining(true, "test");
        assert!(private.take(&a).is_none(), "a draining member's is closed");
        // Returned while its member drains: not kept.
        private.keep(a.clone(), connect().await.unwrap());
        a.set_draining(false, "test");
        assert!(private.take(&a).is_none(), "not kept while draining");
        held.abort();
    }
}
