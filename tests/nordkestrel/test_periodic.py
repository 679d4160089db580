"""``manage.py run_periodic``: every registered job once, in order, one run at a time; a
failing job is reported without stopping the others."""

import io
import threading
from datetime import timedelta

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import CommandError, call_command
from django.db import connection, connections
from django.tasks import TaskResultStatus
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from nordkestrel import locks, periodic
from nordkestrel.management.commands.run_periodic import LOCK_ID, Command

pytestmark = pytest.mark.django_db


@pytest.fixture
def probes(monkeypatch):
    """Register jobs for one test: ``probes.add(name, job=None)``; ``probes.calls`` lists the
    names of the jobs that ran, in order."""
    periodic.registered_jobs()  # the apps' own jobs, before the registry is swapped out
    monkeypatch.setattr(periodic, "_jobs", dict(periodic._jobs))

    class Probes:
        def __init__(self):
            self.calls = []

        def add(self, name, job=None):
            def run():
                self.calls.append(name)
                return job() if job else None

            periodic.periodic(name)(run)

    return Probes()


def run(*args):
    out, err = io.StringIO(), io.StringIO()
    call_command("run_periodic", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def exit_status(*args):
    """Run the command as ``manage.py run_periodic ARGS`` does; return its exit status."""
    try:
        Command().run_from_argv(["manage.py", "run_periodic", *args])
    except SystemExit as exit:
        return exit.code
    return 0


def test_the_housekeeping_jobs_are_registered():
    out, _ = run("--list")

    assert {"audit-prune", "task-results-prune"} <= set(out.split())


def test_a_name_is_registered_once():
    periodic.registered_jobs()
    with pytest.raises(ImproperlyConfigured, match="audit-prune"):
        periodic.periodic("audit-prune")(lambda: None)


def test_every_job_runs_in_order(probes):
    probes.add("first")
    probes.add("second", job=lambda: "2 things")

    out, err = run()

    names = [name for name, _ in periodic.registered_jobs()]
    assert probes.calls == ["first", "second"]
    assert names[-2:] == ["first", "second"]
    for name in names:
        assert f"{name}: done" in out
    assert "second: done (2 things)" in out
    assert err == ""


def test_named_jobs_run_alone(probes):
    probes.add("first")
    probes.add("second")

    run("second")

    assert probes.calls == ["second"]


def test_an_unknown_job_is_refused(probes):
    probes.add("first")

    with pytest.raises(CommandError, match="nope"):
        run("first", "nope")
    assert probes.calls == []


@pytest.mark.django_db(transaction=True)  # the command closes its connections on exit
def test_a_failing_job_does_not_stop_the_others_and_the_exit_status_says_so(probes, capsys):
    def fail():
        raise RuntimeError("the bucket is unreachable")

    probes.add("before")
    probes.add("broken", job=fail)
    probes.add("after")

    assert exit_status("before", "broken", "after") == 1
    assert probes.calls == ["before", "broken", "after"]
    err = capsys.readouterr().err
    assert "broken: failed: the bucket is unreachable" in err
    assert "Periodic jobs failed: broken" in err


@pytest.mark.django_db(transaction=True)
def test_a_run_while_another_holds_the_lock_exits_cleanly_without_running(probes, capsys):
    probes.add("first")
    other = connections.create_connection("default")
    try:
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s, %s)", [locks.PERIODIC_RUN.number, LOCK_ID])

        assert exit_status() == 0

        assert "Another run_periodic is in progress" in capsys.readouterr().out
        assert probes.calls == []
    finally:
        other.close()

    run()
    assert probes.calls == ["first"], "the lock is free again once its holder is gone"


@pytest.mark.django_db(transaction=True)
def test_two_runs_at_once_run_the_jobs_once(probes):
    started, release = threading.Event(), threading.Event()

    def hold():
        started.set()
        assert release.wait(timeout=60), "the test never released the first run"

    probes.add("slow", job=hold)
    first: dict[str, object] = {}

    def first_run():
        try:
            first["output"] = run()[0]
        except Exception as error:  # handed back to the test
            first["output"] = error
        finally:
            connection.close()

    thread = threading.Thread(target=first_run)
    thread.start()
    try:
        assert started.wait(timeout=60), "the first run never started its job"
        second, _ = run()
    finally:
        release.set()
        thread.join()

    assert "Another run_periodic is in progress" in second
    assert "slow: done" in str(first["output"])
    assert probes.calls == ["slow"]


def finished_result(status, *, days_ago):
    moment = timezone.now() - timedelta(days=days_ago)
    row = DBTaskResult.objects.create(
        args_kwargs={"args": [], "kwargs": {}},
        task_path="orders.tasks.send_order_email",
        backend_name="default",
        status=status,
        finished_at=moment if status in {"SUCCESSFUL", "FAILED"} else None,
    )
    DBTaskResult.objects.filter(pk=row.pk).update(enqueued_at=moment)
    return row.pk


def test_finished_task_results_past_retention_are_pruned(settings):
    settings.TASK_RESULT_RETENTION_DAYS = 7
    finished_result(TaskResultStatus.SUCCESSFUL, days_ago=8)
    finished_result(TaskResultStatus.FAILED, days_ago=8)
    kept = {
        finished_result(TaskResultStatus.SUCCESSFUL, days_ago=6),
        finished_result(TaskResultStatus.FAILED, days_ago=6),
        # Never run yet, or still running, however old: a worker still owes them.
        finished_result(TaskResultStatus.READY, days_ago=30),
        finished_result(TaskResultStatus.RUNNING, days_ago=30),
    }

    out, _ = run("task-results-prune")

    assert "task-results-prune: done (2)" in out
    assert set(DBTaskResult.objects.values_list("pk", flat=True)) == kept
    out, _ = run("task-results-prune")
    assert "task-results-prune: done (0)" in out
    assert set(DBTaskResult.objects.values_list("pk", flat=True)) == kept
