"""The logic behind each page, one module per page (toy, latent, samplers, compare, ground_truth, inversion,
guidance; objectives is the toy lab's objectives section): pure functions over core, no Streamlit, unit-tested."""
