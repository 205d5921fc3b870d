"""Everything below the pages that knows nothing of Streamlit or the zoo: the diffusion engine (diffusion/), the
networks (models/), their training (training/) and runs (runs/), data sets (data/), metrics (metrics/) and the
logic behind each page (labs/). Nothing here imports streamlit, zoo or ui."""
