"""Operator settings from the environment: the cluster identity."""

from __future__ import annotations

import pytest

from procon.settings import OperatorSettings, SettingsError


def test_no_cluster_name_means_the_kube_system_uid_is_used() -> None:
    assert OperatorSettings.from_env({}).cluster_name is None
    assert OperatorSettings.from_env({"PROCON_CLUSTER_NAME": " "}).cluster_name is None


@pytest.mark.parametrize(
    "name", ["prod-eu-1", "Prod_EU.1", "a", "x" * 63, "0f8fad5b-d9cb-469f-a165-70867728950e"]
)
def test_a_cluster_name_fit_for_every_processor_is_taken(name: str) -> None:
    assert OperatorSettings.from_env({"PROCON_CLUSTER_NAME": name}).cluster_name == name


@pytest.mark.parametrize(
    "name",
    [
        "team/prod",  # "/" separates the fields of a Checkout.com workflow name
        "x" * 64,
        "-prod",
        "prod.",
        "prod eu",
        "prød",
    ],
)
def test_a_cluster_name_that_does_not_fit_stops_the_operator(name: str) -> None:
    with pytest.raises(SettingsError, match="PROCON_CLUSTER_NAME"):
        OperatorSettings.from_env({"PROCON_CLUSTER_NAME": name})


def test_each_processors_own_settings_are_read_and_checked_by_its_package() -> None:
    from procon import processors
    from procon.processors.plugin import DriverContext

    settings = OperatorSettings.from_env(
        {"PROCON_STRIPE_API_BASE": "http://127.0.0.1:12111/", "PATH": "/bin"}
    )
    # Only the processors' declared variables that are set, nothing else from the environment.
    assert settings.processor_env == {"PROCON_STRIPE_API_BASE": "http://127.0.0.1:12111/"}
    driver = processors.get("stripe").driver(settings.processor_env, DriverContext())
    assert getattr(driver, "api_base", None) == "http://127.0.0.1:12111"
    for plugin in processors.plugins():
        assert plugin.settings, f"{plugin.name} declares no settings for the chart"
        for setting in plugin.settings:
            assert setting.name.startswith(f"PROCON_{plugin.name.upper()}_")
            with pytest.raises(SettingsError, match=setting.name):
                OperatorSettings.from_env({setting.name: "ftp://nowhere"})


def test_reconcile_workers_default_and_setting() -> None:
    assert OperatorSettings.from_env({}).reconcile_workers == 48
    assert OperatorSettings.from_env({"PROCON_RECONCILE_WORKERS": "4"}).reconcile_workers == 4


@pytest.mark.parametrize("value", ["0", "-1", "2.5", "many"])
def test_reconcile_workers_must_be_a_whole_number_of_at_least_one(value: str) -> None:
    with pytest.raises(SettingsError, match="PROCON_RECONCILE_WORKERS"):
        OperatorSettings.from_env({"PROCON_RECONCILE_WORKERS": value})


def test_a_verification_is_reused_for_a_day_and_a_keys_cache_shared_for_ten_minutes() -> None:
    settings = OperatorSettings.from_env({})
    assert (settings.permission_recheck_interval, settings.permission_cache_ttl) == (86400.0, 600.0)
    settings = OperatorSettings.from_env(
        {"PROCON_PERMISSION_RECHECK_INTERVAL": "3600", "PROCON_PERMISSION_CACHE_TTL": "60"}
    )
    assert (settings.permission_recheck_interval, settings.permission_cache_ttl) == (3600.0, 60.0)


@pytest.mark.parametrize("value", ["0", "-5", "daily"])
def test_a_recheck_interval_must_be_a_positive_number_of_seconds(value: str) -> None:
    with pytest.raises(SettingsError, match="PROCON_PERMISSION_RECHECK_INTERVAL"):
        OperatorSettings.from_env({"PROCON_PERMISSION_RECHECK_INTERVAL": value})
