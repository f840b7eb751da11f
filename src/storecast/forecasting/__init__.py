"""The forecasting core: hierarchy, cold starts, the forecast weeks' inputs, and the
pipeline (predict -> reconcile -> quantiles) every job and the service forecast through."""
