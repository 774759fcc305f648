"""darknet knowledge: running the binary (runner). Cfg, lint and fork modules move here next."""
