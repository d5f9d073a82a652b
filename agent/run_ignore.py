"""What a run directory's repository leaves out of its history (its `.gitignore`)."""

GITIGNORE = """\
# Written by the agent: large or volatile artifacts stay out of the run's history.
# journal.jsonl is the live journal; each commit carries its new events in journal/.
journal.jsonl
report.html
*.pt
*.pt2
*.pth
*.ckpt
*.safetensors
*.bin
*.npy
*.npz
cache/
.cache/
__pycache__/
*.pyc
crashes/
slurm/
latex/*.aux
latex/*.log
latex/*.out
latex/*.bbl
latex/*.blg
latex/*.fls
latex/*.fdb_latexmk
latex/*.toc
latex/*.pdf
latex/compile_logs/
latex/figures/
"""
