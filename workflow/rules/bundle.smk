# Result bundles (config `results_bundle`; README, "Result bundles"; src/grokking/bundle.py). With a bundle set, one
# job (fetch_results) makes every result file that the figures, tables and claims read, and wins over the rules that
# would train, merge or generate the same files: `snakemake -n` lists no training job. It has no code or file inputs,
# so that no edit of the library makes fetched results look outdated. Its outputs are update(): Snakemake neither
# deletes one that exists before the job runs nor after it fails (it restores its copy); the fetch keeps a file
# identical to the bundle's and refuses to overwrite one that is not. Results fetched earlier (bundle/fetched.json)
# are checked against the config whenever the workflow is parsed: a changed setting stops it, named.
from grokking import bundle as result_bundle

try:
    result_bundle.check_fetched(config, L)
except result_bundle.BundleError as err:
    raise WorkflowError(str(err)) from None

BUNDLE = result_bundle.source_of(config)
if BUNDLE:
    # The fetch job reads the workflow's config (the specs it checks) from its environment, set here as the
    # numeric profile is in common.smk: as a param, any config change would rerun it, also one that changes
    # no result (the check above stops the workflow on those that do).
    os.environ.update(GROKKING_CONFIG_JSON=json.dumps(config, sort_keys=True))

    ruleorder: fetch_results > train_run
    ruleorder: fetch_results > merge_grid
    ruleorder: fetch_results > prune_run
    ruleorder: fetch_results > merge_width_sweep
    ruleorder: fetch_results > dataset
    ruleorder: fetch_results > image_dataset

    localrules:
        fetch_results,  # a download: on the host that runs Snakemake, not on a compute node

    rule fetch_results:
        """The results of config `results_bundle`, checked (every file's SHA-256, every result's spec against
        the config) and placed in results/<preset>/, instead of training them."""
        output:
            [update(f) for f in result_bundle.needed_files(config, L)],
            record=update(L.bundle_record()),
        log:
            L.log("fetch_results"),
        params:
            python=PYTHON,
            source=BUNDLE[0],
            sha256=f"--sha256 {BUNDLE[1]}" if BUNDLE[1] else "",
        shell:
            "{params.python} -m grokking bundle fetch {params.source:q} {params.sha256} "
            '--config-json "$GROKKING_CONFIG_JSON" > {log} 2>&1'
