"""Pure helpers of the Snakefile: config checks, start-up checks, model entries, job
resources."""
