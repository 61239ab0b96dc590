"""The Cost Explorer stand-in itself, over HTTP with boto3, against hand-computed answers."""

from __future__ import annotations

from datetime import date, timedelta

import boto3
import pandas as pd
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from devkit.localaws.costexplorer import CostExplorerStandIn

TODAY = date(2026, 11, 20)

ITEMS = [
    # date, service, region, usage type, pipeline tag, unblended, amortized, usage
    ("2026-10-31", "Amazon S3", "us-east-1", "TimedStorage-ByteHrs", "orders", 1.00, 1.00, 10.0),
    ("2026-11-01", "Amazon S3", "us-east-1", "TimedStorage-ByteHrs", "orders", 2.00, 1.50, 20.0),
    ("2026-11-01", "AWS Glue", "eu-west-1", "EUW1-ETL-DPU-Hour", "orders", 4.00, 4.00, 9.0),
    ("2026-11-01", "AWS Glue", "us-east-1", "ETL-DPU-Hour", None, 8.00, 6.00, 18.0),
    ("2026-11-02", "Amazon S3", "us-east-1", "Requests-Tier1", "clickstream", 0.25, 0.25, 50000.0),
    ("2026-11-02", "AWS Lambda", "us-east-1", "Request", "clickstream", 0.50, 0.50, 1000.0),
    ("2026-11-03", "AWS Lambda", "eu-west-1", "EUW1-Request", "orders", 16.00, 16.00, 3.0),
]


def _frame() -> pd.DataFrame:
    return pd.DataFrame(
        [
            {"date": d, "service": s, "region": r, "usage_type": u, "tags": {"pipeline": p} if p else {},
             "unblended_cost": c, "amortized_cost": a, "usage_quantity": q}
            for d, s, r, u, p, c, a, q in ITEMS
        ]
    )


@pytest.fixture
def ce(aws):
    standin = aws.app(CostExplorerStandIn)
    standin.configure(today=TODAY)
    standin.load_line_items(_frame())
    return boto3.client("ce", config=Config(retries={"total_max_attempts": 1}))


def _standin(aws) -> CostExplorerStandIn:
    return aws.app(CostExplorerStandIn)


def _call(ce, **kw):
    kw.setdefault("Granularity", "DAILY")
    kw.setdefault("Metrics", ["UnblendedCost"])
    answer = ce.get_cost_and_usage(**kw)
    answer.pop("ResponseMetadata")
    return answer


def _error(fn, **kw) -> tuple[str, str]:
    with pytest.raises(ClientError) as info:
        fn(**kw)
    return info.value.response["Error"]["Code"], info.value.response["Error"]["Message"]


def test_time_period_start_inclusive_end_exclusive(ce):
    answer = _call(ce, TimePeriod={"Start": "2026-11-01", "End": "2026-11-03"})
    assert answer["ResultsByTime"] == [
        {"TimePeriod": {"Start": "2026-11-01", "End": "2026-11-02"}, "Total": {"UnblendedCost": {"Amount": "14", "Unit": "USD"}}, "Groups": [], "Estimated": False},
        {"TimePeriod": {"Start": "2026-11-02", "End": "2026-11-03"}, "Total": {"UnblendedCost": {"Amount": "0.75", "Unit": "USD"}}, "Groups": [], "Estimated": False},
    ]
    assert "NextPageToken" not in answer


def test_monthly_granularity_splits_at_month_boundaries(ce):
    answer = _call(ce, TimePeriod={"Start": "2026-10-15", "End": "2026-11-03"}, Granularity="MONTHLY",
                   Metrics=["UnblendedCost", "AmortizedCost", "UsageQuantity"])
    periods = [(r["TimePeriod"]["Start"], r["TimePeriod"]["End"], r["Total"]["UnblendedCost"]["Amount"],
                r["Total"]["AmortizedCost"]["Amount"], r["Total"]["UsageQuantity"]) for r in answer["ResultsByTime"]]
    assert periods == [
        ("2026-10-15", "2026-11-01", "1", "1", {"Amount": "10", "Unit": "N/A"}),
        ("2026-11-01", "2026-11-03", "14.75", "12.25", {"Amount": "51047", "Unit": "N/A"}),
    ]


def test_group_by_dimension_and_tag_matches_pandas(ce):
    answer = _call(ce, TimePeriod={"Start": "2026-11-01", "End": "2026-11-04"}, Granularity="MONTHLY",
                   GroupBy=[{"Type": "DIMENSION", "Key": "SERVICE"}, {"Type": "TAG", "Key": "pipeline"}])
    assert answer["GroupDefinitions"] == [{"Type": "DIMENSION", "Key": "SERVICE"}, {"Type": "TAG", "Key": "pipeline"}]
    [month] = answer["ResultsByTime"]
    got = {tuple(g["Keys"]): float(g["Metrics"]["UnblendedCost"]["Amount"]) for g in month["Groups"]}
    f = _frame()
    f = f[(f["date"] >= "2026-11-01") & (f["date"] < "2026-11-04")]
    tag = "pipeline$" + f["tags"].map(lambda t: t.get("pipeline", ""))
    want = {k: v for k, v in f.groupby([f["service"], tag])["unblended_cost"].sum().items()}
    assert got == want
    assert got[("AWS Glue", "pipeline$")] == 8.0  # untagged spend: empty tag value
    assert month["Total"] == {}


def test_filter_dimensions_tags_and_or_not(ce):
    def total(flt):
        a = _call(ce, TimePeriod={"Start": "2026-10-01", "End": "2026-11-04"}, Granularity="MONTHLY", Filter=flt)
        return sum(float(r["Total"]["UnblendedCost"]["Amount"]) for r in a["ResultsByTime"])

    assert total({"Dimensions": {"Key": "SERVICE", "Values": ["AWS Glue"]}}) == 12.0
    assert total({"Tags": {"Key": "pipeline", "Values": ["orders"]}}) == 23.0
    assert total({"Tags": {"Key": "pipeline", "MatchOptions": ["ABSENT"]}}) == 8.0
    assert total({"And": [{"Dimensions": {"Key": "REGION", "Values": ["us-east-1"]}},
                          {"Not": {"Dimensions": {"Key": "SERVICE", "Values": ["Amazon S3"]}}}]}) == 8.5
    assert total({"Or": [{"Dimensions": {"Key": "REGION", "Values": ["eu-west-1"]}},
                         {"Tags": {"Key": "pipeline", "Values": ["clickstream"]}}]}) == 20.75
    assert total({"Dimensions": {"Key": "USAGE_TYPE", "Values": ["EUW1-"], "MatchOptions": ["STARTS_WITH"]}}) == 20.0
    assert total({"Dimensions": {"Key": "SERVICE", "Values": ["aws glue"], "MatchOptions": ["EQUALS", "CASE_INSENSITIVE"]}}) == 12.0


def test_paging_returns_every_group_once(aws, ce):
    _standin(aws).configure(page_size=2)
    request = dict(TimePeriod={"Start": "2026-10-31", "End": "2026-11-04"},
                   GroupBy=[{"Type": "DIMENSION", "Key": "SERVICE"}, {"Type": "DIMENSION", "Key": "REGION"}])
    pages, token = [], None
    while True:
        answer = _call(ce, **request, **({"NextPageToken": token} if token else {}))
        pages.append(answer)
        token = answer.get("NextPageToken")
        if not token:
            break
    # 7 items make 7 distinct (day, service, region) groups: ceil(7 / 2) pages
    assert len(pages) == 4
    seen = [(r["TimePeriod"]["Start"], *g["Keys"], g["Metrics"]["UnblendedCost"]["Amount"])
            for p in pages for r in p["ResultsByTime"] for g in r["Groups"]]
    assert sorted(seen) == sorted((d, s, r, f"{c:g}") for d, s, r, _u, _p, c, _a, _q in ITEMS)
    assert _standin(aws).requests["GetCostAndUsage"] == 4

    # a token from another request is refused, as AWS does
    code, _ = _error(ce.get_cost_and_usage, TimePeriod={"Start": "2026-10-31", "End": "2026-11-03"}, Granularity="DAILY",
                     Metrics=["UnblendedCost"], GroupBy=request["GroupBy"], NextPageToken=pages[0]["NextPageToken"])
    assert code == "RequestChangedException"
    code, _ = _error(ce.get_cost_and_usage, **request, Granularity="DAILY", Metrics=["UnblendedCost"], NextPageToken="garbage!")
    assert code == "InvalidNextTokenException"


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"TimePeriod": {"Start": "2026-11-03", "End": "2026-11-01"}}, "Start date (and hour) should be before end date (and hour)"),
        ({"TimePeriod": {"Start": "2026-11-01", "End": "2026-11-01"}}, "Start date and end date must be different"),
        ({"TimePeriod": {"Start": "2026/11/01", "End": "2026-11-03"}}, "TimePeriod.Start '2026/11/01' is not a date (YYYY-MM-DD)"),
        ({"TimePeriod": {"Start": "2026-11-01", "End": "2026-12-02"}}, "end date past the beginning of next month"),
        ({"Granularity": "WEEKLY"}, "Granularity 'WEEKLY' is not valid; use DAILY, MONTHLY or HOURLY"),
        ({"Granularity": "HOURLY"}, "Hourly granularity is not enabled for this account"),
        ({"Metrics": ["Cost"]}, "Metric Cost is not valid; valid metrics: UnblendedCost, AmortizedCost, BlendedCost, NetUnblendedCost, NetAmortizedCost, UsageQuantity, NormalizedUsageAmount"),
        ({"GroupBy": [{"Type": "DIMENSION", "Key": "SERVICE"}, {"Type": "DIMENSION", "Key": "REGION"}, {"Type": "TAG", "Key": "pipeline"}]},
         "Group by can only be used with up to 2 dimensions or tags"),
        ({"GroupBy": [{"Type": "LINKED_ACCOUNT", "Key": ""}]}, "Group Definition type is invalid."),
        ({"Filter": {"Dimensions": {"Key": "SERVICE", "Values": ["x"]}, "Tags": {"Key": "a", "Values": ["b"]}}},
         "Expression must have exactly one of And, Or, Not, Dimensions, Tags or CostCategories"),
        ({"Filter": {"And": [{"Dimensions": {"Key": "SERVICE", "Values": ["x"]}}]}}, "And needs at least two expressions"),
    ],
)
def test_rejects_what_aws_rejects(ce, kw, message):
    request = {"TimePeriod": {"Start": "2026-11-01", "End": "2026-11-03"}, "Granularity": "DAILY", "Metrics": ["UnblendedCost"]}
    request.update(kw)
    assert _error(ce.get_cost_and_usage, **request) == ("ValidationException", message)


def test_forecast_mean_and_interval_by_hand(aws):
    standin = _standin(aws)
    standin.reset()
    standin.configure(today=TODAY)
    # 28 days before today alternate 10 and 20: mean 15, sample sd = sqrt(28 * 25 / 27)
    days = [TODAY - timedelta(days=i) for i in range(1, 41)]
    standin.load_line_items([{"date": d, "service": "S", "unblended_cost": 10.0 if d.toordinal() % 2 else 20.0} for d in days])
    ce = boto3.client("ce")
    answer = ce.get_cost_forecast(TimePeriod={"Start": "2026-11-20", "End": "2026-11-23"}, Metric="UNBLENDED_COST",
                                  Granularity="DAILY", PredictionIntervalLevel=80)
    sd = (28 * 25 / 27) ** 0.5
    z = 1.2815515655446004
    assert answer["Total"] == {"Amount": "45", "Unit": "USD"}
    [first, *_rest] = answer["ForecastResultsByTime"]
    assert len(answer["ForecastResultsByTime"]) == 3
    assert first["TimePeriod"] == {"Start": "2026-11-20", "End": "2026-11-21"}
    assert float(first["MeanValue"]) == 15.0
    assert float(first["PredictionIntervalLowerBound"]) == pytest.approx(15 - z * sd, abs=1e-9)
    assert float(first["PredictionIntervalUpperBound"]) == pytest.approx(15 + z * sd, abs=1e-9)

    monthly = ce.get_cost_forecast(TimePeriod={"Start": "2026-11-20", "End": "2027-01-01"}, Metric="UNBLENDED_COST",
                                   Granularity="MONTHLY")
    assert [(r["TimePeriod"]["Start"], r["MeanValue"]) for r in monthly["ForecastResultsByTime"]] == [
        ("2026-11-20", "165"), ("2026-12-01", "465")]


def test_forecast_rejections(aws, ce):
    code, message = _error(ce.get_cost_forecast, TimePeriod={"Start": "2026-11-20", "End": "2026-11-30"},
                           Metric="UNBLENDED_COST", Granularity="DAILY")
    assert (code, message) == ("DataUnavailableException", "Insufficient amount of historical data to generate forecast.")
    code, _ = _error(ce.get_cost_forecast, TimePeriod={"Start": "2026-11-19", "End": "2026-11-30"}, Metric="UNBLENDED_COST", Granularity="DAILY")
    assert code == "ValidationException"
    code, message = _error(ce.get_cost_forecast, TimePeriod={"Start": "2026-11-20", "End": "2027-03-01"}, Metric="UNBLENDED_COST", Granularity="DAILY")
    assert (code, message) == ("ValidationException", "DAILY forecasts cover at most 3 months; End must be on or before 2027-02-20")


def test_other_requests_reach_moto_and_reset_clears(aws, ce):
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="still-moto")
    assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == ["still-moto"]
    _call(ce, TimePeriod={"Start": "2026-11-01", "End": "2026-11-02"})
    aws.reset()
    standin = _standin(aws)
    assert standin.requests == {} and standin.items.empty


def test_access_denied_like_iam(aws, ce):
    _standin(aws).configure(deny=["GetCostAndUsage"])
    code, message = _error(ce.get_cost_and_usage, TimePeriod={"Start": "2026-11-01", "End": "2026-11-02"},
                           Granularity="DAILY", Metrics=["UnblendedCost"])
    assert code == "AccessDeniedException"
    assert "not authorized to perform: ce:GetCostAndUsage" in message


def test_no_line_items_give_empty_groups_not_a_server_error(aws):
    # a fresh local AWS (nothing loaded): the collector's own queries, grouped by a tag and a dimension
    standin = _standin(aws)
    standin.configure(today=TODAY)
    client = boto3.client("ce", config=Config(retries={"total_max_attempts": 1}))
    answer = _call(client, TimePeriod={"Start": "2026-11-01", "End": "2026-11-03"},
                   GroupBy=[{"Type": "TAG", "Key": "pipeline"}, {"Type": "DIMENSION", "Key": "SERVICE"}])
    assert [(r["TimePeriod"]["Start"], r["Groups"], r["Total"]) for r in answer["ResultsByTime"]] == [
        ("2026-11-01", [], {}), ("2026-11-02", [], {})]
