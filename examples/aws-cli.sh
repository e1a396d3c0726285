#!/usr/bin/env sh
# aws-cli against the gateway. Source it, or copy the lines you need.
export AWS_ACCESS_KEY_ID=GKREPLACEME000000000
export AWS_SECRET_ACCESS_KEY=replace-with-the-secret-make-run-printed
export AWS_DEFAULT_REGION=us-east-1
S3="aws --endpoint-url http://127.0.0.1:9000"

$S3 s3 mb s3://photos
$S3 s3 cp cat.jpg s3://photos/cat.jpg
$S3 s3api head-object --bucket photos --key cat.jpg --query Metadata.cid   # the object's IPFS CID
$S3 s3 sync ./album s3://photos/album
$S3 s3api put-bucket-versioning --bucket photos --versioning-configuration Status=Enabled
# aws-cli v1 presigns with SigV2 unless told otherwise (or start the gateway with --allow-sigv2):
aws configure set default.s3.signature_version s3v4
$S3 s3 presign s3://photos/cat.jpg --expires-in 3600
