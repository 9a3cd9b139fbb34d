-- Maps (issue 3): geometry for grids and drawn areas.
--
-- Geometry is GeoJSON text in WGS84 (RFC 7946 order: lon, lat), validated by anxin-store's
-- maps.rs before it is written; `source_crs` remembers the system it was drawn in (the base
-- layer's), so a GCJ-02 drawing can be told from a surveyed one later.

ALTER TABLE grids ADD COLUMN geometry TEXT;
ALTER TABLE grids ADD COLUMN geometry_crs TEXT;

-- A named area or point drawn on the map, belonging to a node (for warnings, risk maps).
CREATE TABLE map_features (
    id UUID PRIMARY KEY,
    node_id UUID NOT NULL REFERENCES nodes (id),
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    geometry TEXT NOT NULL,
    source_crs TEXT NOT NULL,
    created_by UUID REFERENCES users (id),
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX map_features_node ON map_features (node_id, kind);
