"""The diffusion engine: schedules, forward process, denoisers, samplers. Never imports streamlit."""
