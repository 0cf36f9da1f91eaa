"""Shared: hard rasterisation (``rasterize``) and differentiable silhouettes (``silhouette``: torch and nvdiffrast)."""
