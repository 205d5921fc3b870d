"""The model zoo: what can be loaded (manifest, Hub download and verification, loaders, bundled checkpoints).

Imports core, never streamlit.
"""
