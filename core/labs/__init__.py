"""The logic behind each page, one module per page (toy, latent, samplers, compare, inversion, guidance; objectives is
the toy lab's objectives section; ground_truth is a package, one module per section of its page): pure functions
over core, no Streamlit, unit-tested."""
