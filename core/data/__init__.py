"""Data a page works on: toy 2-D/3-D point clouds (their exact law where it is a Gaussian mixture), drawings, CSV
uploads, standardisation, and images in and out (uploads checked and decoded, grids, PNG and GIF)."""
