"""Generating ideas for a template: `python -m agent.ideas --template T -n N`.

    generate (schema-checked, errors sent back, bounded)
      -> reflect (bounded rounds, each schema-checked)
      -> novelty (bounded rounds of literature queries, then a schema-checked decision,
                  three-valued by what the searches returned: novel / not novel / unknown)
      -> one idea file each, with its provenance and the literature cache entries it used

`cli` parses and prints; `session` runs the loop over ideas; `generate`, `novelty` and
`replies` are its parts; `output` names and writes the files.
"""
