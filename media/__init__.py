"""The media service: uploads, content-sniffed types, thumbnails, safe serving and cleanup."""
