"""Proves the image model (ami_emulator/ec2_image_model.py): typed ProductCodes against a launched
server (emulator_harness.py).

Run: python3 -m pytest scripts/emulator
"""

from __future__ import annotations

from emulator_harness import REGION, Server, image, register, snapshot


def test_product_codes(server: Server) -> None:
    ec2 = server.client("ec2")
    image_id = register(ec2, snapshot(ec2))
    server.ok("POST", "ec2/product-codes", {"region": REGION, "imageId": image_id,
                                            "productCodes": [{"ProductCodeId": "abc", "ProductCodeType": "marketplace"}]})
    assert image(ec2, image_id)["ProductCodes"] == [{"ProductCodeId": "abc", "ProductCodeType": "marketplace"}]
    assert ec2.describe_image_attribute(ImageId=image_id, Attribute="productCodes")["ProductCodes"] == [
        {"ProductCodeId": "abc", "ProductCodeType": "marketplace"}]
    other = register(ec2, snapshot(ec2), Name="no-codes")
    assert image(ec2, other)["ProductCodes"] == []
