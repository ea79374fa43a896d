"""moto's server, with the CloudFormation parts our stack needs that moto lacks.

Started by test/support/moto.ts (startMoto({ cloudFormation: true })) for the
`cdk deploy` test (test/infra/deploy.test.ts). moto's CloudFormation creates
the resource types it models and skips the others with a warning; these
patches make it create three more, as CloudFormation does:

- AWS::SQS::Queue: a FIFO queue without a QueueName gets a generated name
  ending in ".fifo" (moto generates one without, then refuses it).
- AWS::Glue::Database: the Glue database (moto's Glue API has them, its
  CloudFormation does not).
- AWS::SecretsManager::Secret: a secret with GenerateSecretString; Ref gives
  its ARN (moto's Secrets Manager API has them, its CloudFormation does not).

One more patch turns off moto's own delivery of DynamoDB stream records to
mapped functions: moto would run them in Docker (there is none) on every
PutItem, and fails to serialize binary attributes first (a 500 for the
PutItem). The test's driver polls the stream and invokes the functions the
way Lambda does instead.

Everything else, and every API call, is moto's own. Arguments are moto_server's.
"""
import json
import sys
from typing import Any

from moto.awslambda import models as lambda_models
from moto.core.common_models import CloudFormationModel
from moto.glue.models import glue_backends
from moto.secretsmanager.models import secretsmanager_backends
from moto.sqs import models as sqs_models

_create_queue = sqs_models.Queue.create_from_cloudformation_json.__func__


def _queue(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
    props = cloudformation_json.get("Properties", {})
    if str(props.get("FifoQueue", "false")).lower() == "true" and "QueueName" not in props:
        resource_name = str(resource_name)[0:75] + ".fifo"
    return _create_queue(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs)


sqs_models.Queue.create_from_cloudformation_json = classmethod(_queue)


class GlueDatabase(CloudFormationModel):
    # moto's model registry names a model's service by its module.
    __module__ = "moto.glue.models"

    def __init__(self, name: str):
        self.name = name

    @staticmethod
    def cloudformation_name_type() -> str:
        return ""

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::Glue::Database"

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return False

    @property
    def physical_resource_id(self) -> str:
        return self.name

    @classmethod
    def create_from_cloudformation_json(cls, resource_name: str, cloudformation_json: dict[str, Any], account_id: str, region_name: str, **kwargs: Any) -> "GlueDatabase":
        db_input = cloudformation_json["Properties"]["DatabaseInput"]
        glue_backends[account_id][region_name].create_database(db_input["Name"], db_input)
        return cls(db_input["Name"])

    def is_created(self) -> bool:
        return True


class SecretsManagerSecret(CloudFormationModel):
    __module__ = "moto.secretsmanager.models"

    def __init__(self, arn: str):
        self.arn = arn

    @staticmethod
    def cloudformation_name_type() -> str:
        return "Name"

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::SecretsManager::Secret"

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return attr == "Id"

    def get_cfn_attribute(self, attribute_name: str) -> str:
        return self.arn

    @property
    def physical_resource_id(self) -> str:
        return self.arn

    @classmethod
    def create_from_cloudformation_json(cls, resource_name: str, cloudformation_json: dict[str, Any], account_id: str, region_name: str, **kwargs: Any) -> "SecretsManagerSecret":
        props = cloudformation_json.get("Properties", {})
        backend = secretsmanager_backends[account_id][region_name]
        value = props.get("SecretString")
        gen = props.get("GenerateSecretString")
        if value is None and gen is not None:
            value = backend.get_random_password(
                password_length=int(gen.get("PasswordLength", 32)),
                exclude_characters=gen.get("ExcludeCharacters", ""),
                exclude_numbers=str(gen.get("ExcludeNumbers", "false")).lower() == "true",
                exclude_punctuation=str(gen.get("ExcludePunctuation", "false")).lower() == "true",
                exclude_uppercase=str(gen.get("ExcludeUppercase", "false")).lower() == "true",
                exclude_lowercase=str(gen.get("ExcludeLowercase", "false")).lower() == "true",
                include_space=str(gen.get("IncludeSpace", "false")).lower() == "true",
                require_each_included_type=str(gen.get("RequireEachIncludedType", "true")).lower() == "true",
            )
            value = json.loads(value)["RandomPassword"]
        created = backend.create_secret(
            name=props.get("Name", resource_name),
            secret_string=value,
            secret_binary=None,
            description=props.get("Description"),
            tags=props.get("Tags"),
            kms_key_id=props.get("KmsKeyId"),
            client_request_token=None,
            replica_regions=[],
            force_overwrite=False,
        )
        return cls(json.loads(created)["ARN"])

    def is_created(self) -> bool:
        return True


# None: "not delivered", so moto keeps the records for GetRecords.
lambda_models.LambdaBackend.send_dynamodb_items = lambda self, function_arn, items, source: None  # type: ignore[method-assign]


if __name__ == "__main__":
    from moto.server import main

    main(sys.argv[1:])
