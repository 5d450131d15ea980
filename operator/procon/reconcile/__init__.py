"""The reconcile logic: pure decisions (``webhook_plan``, ``conditions``, ``ownership``) and the
orchestration that applies them through a driver and the Kubernetes port (``reconciler``)."""
