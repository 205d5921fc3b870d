"""Streamlit-side pieces shared by pages: navigation, cached loaders, widgets, figures."""
