//! A small blocking connection pool: connections are made lazily up to a limit and handed back
//! on drop. Both backends use it for readers; PostgreSQL for writers too.

use std::ops::{Deref, DerefMut};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use crate::error::{Result, StoreError};

type Factory<C> = Box<dyn Fn() -> Result<C> + Send + Sync>;

pub struct Pool<C> {
    inner: Arc<Inner<C>>,
}

impl<C> Clone for Pool<C> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

struct Inner<C> {
    idle: Mutex<(Vec<C>, usize)>,
    freed: Condvar,
    max: usize,
    make: Factory<C>,
    /// A connection that failed a health check is dropped instead of returned.
    healthy: Box<dyn Fn(&mut C) -> bool + Send + Sync>,
}

impl<C> Pool<C> {
    pub fn new(
        max: usize,
        make: impl Fn() -> Result<C> + Send + Sync + 'static,
        healthy: impl Fn(&mut C) -> bool + Send + Sync + 'static,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                idle: Mutex::new((Vec::new(), 0)),
                freed: Condvar::new(),
                max: max.max(1),
                make: Box::new(make),
                healthy: Box::new(healthy),
            }),
        }
    }

    /// A connection, waiting up to `wait` for one to be free.
    pub fn get(&self, wait: Duration) -> Result<Pooled<C>> {
        let deadline = std::time::Instant::now() + wait;
        let mut guard = self.inner.idle.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(c) = guard.0.pop() {
                return Ok(Pooled {
                    conn: Some(c),
                    pool: self.inner.clone(),
                });
            }
            if guard.1 < self.inner.max {
                guard.1 += 1;
                drop(guard);
                return match (self.inner.make)() {
                    Ok(c) => Ok(Pooled {
                        conn: Some(c),
                        pool: self.inner.clone(),
                    }),
                    Err(e) => {
                        let mut g = self.inner.idle.lock().unwrap_or_else(|e| e.into_inner());
                        g.1 -= 1;
                        self.inner.freed.notify_one();
                        Err(e)
                    }
                };
            }
            let now = std::time::Instant::now();
            if now >= deadline {
                return Err(StoreError::Unavailable("connection pool exhausted".into()));
            }
            guard = self
                .inner
                .freed
                .wait_timeout(guard, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

impl<C> Pool<C> {
    /// Take every idle connection out of the pool (to close them somewhere safe).
    pub fn drain(&self) -> Vec<C> {
        let mut g = self.inner.idle.lock().unwrap_or_else(|e| e.into_inner());
        let conns = std::mem::take(&mut g.0);
        g.1 -= conns.len();
        conns
    }
}

pub struct Pooled<C> {
    conn: Option<C>,
    pool: Arc<Inner<C>>,
}

impl<C> Pooled<C> {
    /// Drop this connection instead of returning it (after a fatal error).
    pub fn discard(mut self) {
        if self.conn.take().is_some() {
            let mut g = self.pool.idle.lock().unwrap_or_else(|e| e.into_inner());
            g.1 -= 1;
            self.pool.freed.notify_one();
        }
    }
}

impl<C> Deref for Pooled<C> {
    type Target = C;
    fn deref(&self) -> &C {
        self.conn
            .as_ref()
            .unwrap_or_else(|| unreachable!("taken only on drop"))
    }
}
impl<C> DerefMut for Pooled<C> {
    fn deref_mut(&mut self) -> &mut C {
        self.conn
            .as_mut()
            .unwrap_or_else(|| unreachable!("taken only on drop"))
    }
}

impl<C> Drop for Pooled<C> {
    fn drop(&mut self) {
        if let Some(mut c) = self.conn.take() {
            let ok = (self.pool.healthy)(&mut c);
            let mut g = self.pool.idle.lock().unwrap_or_else(|e| e.into_inner());
            if ok {
                g.0.push(c);
            } else {
                g.1 -= 1;
            }
            self.pool.freed.notify_one();
        }
    }
}
