"""dbt machinery: the project and its manifest, model grains, the translator, assets and runs."""
