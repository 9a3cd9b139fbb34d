//! Emergency reserves (issue 7) (owner: reserves & dispatch): items and their units, stock
//! movement kinds, reserve norms per 1,000 residents, and the dispatch problem (gaps and depot
//! stocks → transfers) solved as a minimum-cost flow. SCAFFOLD.
