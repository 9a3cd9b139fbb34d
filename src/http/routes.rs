//! The route table: every route is registered through [`Table`], which records its method, path
//! and what it serves, so tests can walk all of them (the isolation matrix fails when a route is
//! not covered) and so can the API document.

use axum::routing::MethodRouter;
use axum::Router;

use crate::app::App;

/// What a route serves, for the isolation matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Serves {
    /// Open to anyone (health, sign-in).
    Public,
    /// Records of one kind; `{id}` in the path names one (kind as in the change log).
    Records(&'static str),
    /// The caller's own account or session.
    Own,
    /// Administration (accounts, grants, audit): role-gated, not tree-scoped.
    Admin,
    /// A live event stream, filtered to the caller's reach.
    Live,
}

#[derive(Debug, Clone)]
pub struct Entry {
    pub method: &'static str,
    pub path: &'static str,
    pub serves: Serves,
}

/// A router that remembers what was registered.
pub struct Table {
    router: Router<App>,
    entries: Vec<Entry>,
}

impl Default for Table {
    fn default() -> Self {
        Self::new()
    }
}

impl Table {
    pub fn new() -> Self {
        Self {
            router: Router::new(),
            entries: Vec::new(),
        }
    }

    /// Register `handler` for `methods` (e.g. `&["GET"]`) at `path`.
    pub fn route(
        mut self,
        path: &'static str,
        methods: &[&'static str],
        serves: Serves,
        handler: MethodRouter<App>,
    ) -> Self {
        for m in methods {
            self.entries.push(Entry {
                method: m,
                path,
                serves,
            });
        }
        self.router = self.router.route(path, handler);
        self
    }

    pub fn merge(mut self, other: Table) -> Self {
        self.entries.extend(other.entries);
        self.router = self.router.merge(other.router);
        self
    }

    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    pub fn into_parts(self) -> (Router<App>, Vec<Entry>) {
        (self.router, self.entries)
    }
}
