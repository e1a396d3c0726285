"""boto3 against the gateway: upload, read the CID, list, download."""
import boto3

s3 = boto3.client(
    "s3",
    endpoint_url="http://127.0.0.1:9000",
    region_name="us-east-1",
    aws_access_key_id="GKREPLACEME000000000",
    aws_secret_access_key="replace-with-the-secret-make-run-printed",
)
s3.create_bucket(Bucket="notes")
out = s3.put_object(Bucket="notes", Key="hello.txt", Body=b"hello world")
print("CID:", out["ResponseMetadata"]["HTTPHeaders"]["x-amz-meta-cid"])
for page in s3.get_paginator("list_objects_v2").paginate(Bucket="notes"):
    for obj in page.get("Contents", []):
        print(obj["Key"], obj["Size"], obj["ETag"])
print(s3.get_object(Bucket="notes", Key="hello.txt")["Body"].read())
