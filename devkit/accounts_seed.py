"""Member accounts on the local AWS for a multi-account config (``examples/multi-account.toml``).

``seed_member_accounts(settings)`` makes each ``[[aws.accounts]]`` role exist in its account of
the local AWS (moto's IAM, with a trust policy asking for the configured external id), then,
with that role's credentials, creates in each ``[aws] regions`` region a Glue job with one run
(``<name>-compaction``) and a Step Functions state machine (``<name>-orders``, Pass states) with
one execution, so one ``pipepulse collect`` pass has something to read in every account x
region. ``cli/awsenv.py`` calls it when it starts an in-process local AWS for a config that
names accounts; the roles are what a real member account would have deployed.
"""

from __future__ import annotations

import json
import logging

import boto3

from devkit.localaws.sts import create_role
from pipepulse.settings import Settings

__all__ = ["seed_member_accounts"]

log = logging.getLogger(__name__)
ORDERS = {"StartAt": "Extract", "States": {"Extract": {"Type": "Pass", "Next": "Load"}, "Load": {"Type": "Pass", "End": True}}}


def seed_member_accounts(settings: Settings) -> int:
    """Create the configured roles and a little data per account x region; returns runs started."""
    started = 0
    regions = settings.aws_regions or (settings.aws_region,)
    for account in settings.aws_accounts:
        create_role(account.account_id, account.role_arn.rsplit("/", 1)[-1], external_id=account.external_id)
        kwargs = {"ExternalId": account.external_id} if account.external_id else {}
        creds = boto3.client("sts", region_name=settings.aws_region).assume_role(
            RoleArn=account.role_arn, RoleSessionName="pipepulse-seed", **kwargs)["Credentials"]
        for region in regions:
            session = boto3.Session(aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
                                    aws_session_token=creds["SessionToken"], region_name=region)
            glue = session.client("glue")
            job = f"{account.label}-compaction"
            glue.create_job(Name=job, Role=account.role_arn, Command={"Name": "glueetl", "ScriptLocation": "s3://demo/job.py"},
                            WorkerType="G.1X", NumberOfWorkers=2)
            glue.start_job_run(JobName=job)
            sfn = session.client("stepfunctions")
            machine = sfn.create_state_machine(name=f"{account.label}-orders", definition=json.dumps(ORDERS),
                                               roleArn=account.role_arn)["stateMachineArn"]
            sfn.start_execution(stateMachineArn=machine, name=f"{region}-1")
            started += 2
    log.info("seeded %d member account(s) x %d region(s) on the local AWS", len(settings.aws_accounts), len(regions))
    return started
