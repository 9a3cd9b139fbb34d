//! Warning stories: workflow, targeting, channels, reach, CAP.
