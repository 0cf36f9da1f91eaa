"""Images as the models read them (a shared part): decoding bytes to RGB arrays (``decode``) and
the pixel guard of buffers derived from an image (``guard``)."""
