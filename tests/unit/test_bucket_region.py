"""The region a Bucket state store's requests are signed for, as Kratix's client (minio-go) finds it: an Amazon S3
regional endpoint's, else the bucket's own answer, else the worker's AWS setting, else us-east-1. The lookup itself is
tested against real servers in tests/integration/test_bucket_writer.py."""

from __future__ import annotations

import pytest

from activities.stores.bucket_writer import bucket_region


@pytest.mark.parametrize(
    ("endpoint", "region"),
    [
        ("https://s3.eu-west-1.amazonaws.com", "eu-west-1"),
        ("https://s3-eu-west-2.amazonaws.com", "eu-west-2"),
        ("https://s3.dualstack.ap-southeast-2.amazonaws.com", "ap-southeast-2"),
        ("https://s3-fips.us-gov-west-1.amazonaws.com", "us-gov-west-1"),
        ("https://fleet.s3.ca-central-1.amazonaws.com:443", "ca-central-1"),
        ("https://s3.cn-north-1.amazonaws.com.cn", "cn-north-1"),
        ("HTTPS://S3.EU-CENTRAL-1.AMAZONAWS.COM/", "eu-central-1"),
    ],
)
def test_an_amazon_regional_endpoint_names_its_region_whatever_the_worker_says(endpoint: str, region: str) -> None:
    assert bucket_region(endpoint, "ap-south-1", "us-west-2") == region


@pytest.mark.parametrize(
    "endpoint",
    ["https://s3.amazonaws.com", "http://127.0.0.1:9000", "https://minio.example.com", "https://s3.eu-west-1.example"],
)
def test_any_other_endpoint_takes_the_buckets_answer_else_the_workers_region_else_us_east_1(endpoint: str) -> None:
    assert bucket_region(endpoint, "ap-south-1", "eu-north-1") == "ap-south-1"
    assert bucket_region(endpoint, None, "eu-north-1") == "eu-north-1"
    assert bucket_region(endpoint, None, None) == "us-east-1"
